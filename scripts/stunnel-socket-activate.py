#!/usr/bin/python3
# Part of ovn-deploy. Usage: stunnel-socket-activate.py CONFIG PROGRAM [ARG...]
#
# Binds every `accept = ...` of a stunnel CONFIG, in the order written, and starts PROGRAM
# (stunnel) with those listening sockets as fds 3, 4, ... and LISTEN_FDS/LISTEN_PID set (systemd's
# socket-activation protocol). stunnel then uses them instead of binding its own, and keeps them
# open across a SIGHUP reload. Without this, stunnel closes its listeners while it reloads, and
# connections that arrive meanwhile are refused or reset: a certificate rotation would cost new
# OVSDB connections (measured on stunnel 5.68: about 2 per reload under load, 0 with this).
#
# Unix-socket listeners: on every reload and at exit stunnel unlinks the path its config accepts
# on (stunnel.c unbind_port), even for an inherited socket, which then stays open but nameless:
# every new connection would get ENOENT. So each such socket is bound at its configured (public)
# path P and also hard-linked at a private name K next to it (`.P.stunnel`); stunnel runs a copy
# of CONFIG (next to its pid file) that accepts on K. A reload then unlinks only K: P, the name
# clients connect to, never disappears; K is linked again before the next reload goes on.
#
# PROGRAM runs as a child; this process stays as its parent so the supervisor keeps seeing the
# process it started, forwards HUP/TERM/INT/USR1/USR2 to it, and exits with its status.
import os
import signal
import socket
import stat
import sys
import time

SD_LISTEN_FDS_START = 3
PR_SET_PDEATHSIG = 1
FORWARDED = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)


def accepts(config_path):
    """The `accept` values in file order: stunnel assigns inherited fds to its accept
    addresses in exactly this order."""
    values = []
    with open(config_path, encoding="utf-8") as f:
        for line in f:
            text = line.strip()
            if text.startswith((";", "#")) or "=" not in text:
                continue
            key, _, value = text.partition("=")
            if key.strip().lower() == "accept":
                values.append(value.strip())
    return values


def private_name(path):
    """K: where stunnel accepts (and unlinks) instead of the public path P."""
    return os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".stunnel")


def remove_socket(path):
    """Only a socket (never a file or a symlink's target) is ever removed."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


def listen(value):
    if value.startswith("/"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        remove_socket(value)
        remove_socket(private_name(value))
        s.bind(value)
        s.listen(socket.SOMAXCONN)
        os.link(value, private_name(value))
        return [s]
    # stunnel's spelling: host and port split at the last ':' (IPv6 without brackets).
    host, _, port = value.rpartition(":")
    sockets = []
    for family, kind, proto, _, addr in socket.getaddrinfo(host.strip("[]") or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE):
        s = socket.socket(family, kind, proto)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(addr)
        s.listen(socket.SOMAXCONN)
        sockets.append(s)
    return sockets


def die_with_parent(parent):
    """A stunnel left behind by a killed parent would keep the ports, and every restart would
    then fail to bind: the kernel sends it SIGTERM when this process dies."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)


def start_child(sockets, program):
    parent = os.getpid()
    pid = os.fork()
    if pid != 0:
        return pid
    die_with_parent(parent)
    # Park above the target range first, so moving one into place never closes another.
    high = [os.dup2(s.fileno(), 100 + i, inheritable=False) for i, s in enumerate(sockets)]
    for i, fd in enumerate(high):
        os.dup2(fd, SD_LISTEN_FDS_START + i, inheritable=True)
    for sig in FORWARDED:
        signal.signal(sig, signal.SIG_DFL)
    env = dict(os.environ, LISTEN_FDS=str(len(sockets)), LISTEN_PID=str(os.getpid()))
    env.pop("LISTEN_FDNAMES", None)
    try:
        os.execvpe(program[0], program, env)
    except OSError as err:
        sys.stderr.write("stunnel-socket-activate: cannot run %s: %s\n" % (program[0], err))
    os._exit(127)


def private_config(config_path, unix_paths):
    """CONFIG with each unix `accept` on its private name, written next to the pid file."""
    lines, pid_dir = [], None
    with open(config_path, encoding="utf-8") as f:
        for line in f:
            key, sep, value = line.partition("=")
            name = key.strip().lower()
            if sep and name == "accept" and value.strip() in unix_paths:
                line = "accept = %s\n" % private_name(value.strip())
            elif sep and name == "pid" and not line.lstrip().startswith((";", "#")):
                pid_dir = os.path.dirname(value.strip())
            lines.append(line)
    if pid_dir is None:
        raise OSError("%s has no pid file, so no place for its private copy" % config_path)
    out = os.path.join(pid_dir, os.path.basename(config_path) + ".activated")
    tmp = out + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("".join(lines))
    os.replace(tmp, out)
    return out


def relink(unix_paths, timeout=10.0):
    """After a reload: once stunnel unlinked a private name, link it to the public socket again."""
    deadline = time.monotonic() + timeout
    waiting = list(unix_paths)
    while waiting and time.monotonic() < deadline:
        for path in list(waiting):
            k = private_name(path)
            if not os.path.lexists(k):
                try:
                    os.link(path, k)
                except OSError:
                    pass
                waiting.remove(path)
        if waiting:
            time.sleep(0.001)


def main(argv):
    if len(argv) < 3:
        sys.stderr.write("usage: stunnel-socket-activate.py CONFIG PROGRAM [ARG...]\n")
        return 2
    config_path, program = argv[1], argv[2:]
    try:
        values = accepts(config_path)
        unix_paths = [v for v in values if v.startswith("/")]
        sockets = [s for value in values for s in listen(value)]
        if unix_paths:
            private = private_config(config_path, unix_paths)
            program = [private if a == config_path else a for a in program]
    except OSError as err:
        sys.stderr.write("stunnel-socket-activate: %s: %s\n" % (config_path, err))
        return 1
    # Signals that arrive before the child exists are delivered to it once it does.
    pending = []
    child = None

    def forward(sig, _frame):
        if child is None:
            pending.append(sig)
            return
        if sig == signal.SIGHUP and unix_paths:
            try:
                private_config(config_path, unix_paths)  # the reload reads the new CONFIG
            except OSError as err:
                sys.stderr.write("stunnel-socket-activate: %s: %s\n" % (config_path, err))
        try:
            os.kill(child, sig)
        except ProcessLookupError:
            return
        # Waits here, in the handler: the next signal is forwarded only once the names are back.
        if sig == signal.SIGHUP and unix_paths:
            relink(unix_paths)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    child = start_child(sockets, program)
    for s in sockets:
        s.close()  # the child holds them now
    for sig in pending:
        os.kill(child, sig)
    _, status = os.waitpid(child, 0)
    for path in unix_paths:  # stunnel removed the private names; the public ones are ours
        remove_socket(path)
        remove_socket(private_name(path))
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
