# Shell helpers of the ovn-deploy images' entrypoints (bash): run daemons in the foreground as
# children, stop them all on SIGTERM, and stop the container when one of them dies (so the
# container runtime's restart policy takes over instead of a half-working container).

log() { printf '%s ovn-deploy-entrypoint: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

CHILDREN=()

# spawn NAME CMD...: starts a daemon in the background and remembers it.
spawn() {
    local name=$1
    shift
    "$@" &
    CHILDREN+=("$!")
    log "started $name (pid $!)"
}

stop_children() {
    local p
    for p in "${CHILDREN[@]}"; do kill -TERM "$p" 2>/dev/null || :; done
    wait 2>/dev/null || :
}

# supervise: waits until SIGTERM/SIGINT (exit 0) or until any daemon exits (exit with its code).
supervise() {
    trap 'log "stopping"; stop_children; exit 0' TERM INT
    local rc=0
    wait -n || rc=$?
    log "a daemon exited (status $rc): stopping the others"
    stop_children
    exit $(( rc == 0 ? 1 : rc ))
}

# wait_for_socket PATH [TENTHS]: until a unix socket exists (default 10 s).
wait_for_socket() {
    local i
    for ((i = 0; i < ${2:-100}; i++)); do
        [ -S "$1" ] && return 0
        sleep 0.1
    done
    die "timed out waiting for $1"
}

# The first global IPv4 address, or 127.0.0.1 (also when the base image has no `ip`).
first_ipv4() {
    local a=''
    a=$(ip -4 -o addr show scope global 2>/dev/null | awk '{print $4; exit}' | cut -d/ -f1) || a=''
    echo "${a:-127.0.0.1}"
}

# ovs_start: ovsdb-server with Open vSwitch's database (created or converted as needed) and,
# unless OVS_NO_VSWITCHD is set, ovs-vswitchd. OVS_SYSTEM_ID names this node.
ovs_start() {
    mkdir -p "$OVS_RUNDIR" "$OVS_LOGDIR" "$OVS_DBDIR"
    local db=$OVS_DBDIR/conf.db schema=/usr/share/openvswitch/vswitch.ovsschema
    if [ ! -f "$db" ]; then
        ovsdb-tool create "$db" "$schema"
    elif [ "$(ovsdb-tool needs-conversion "$db" "$schema")" = yes ]; then
        ovsdb-tool convert "$db" "$schema"
    fi
    local extra=()
    [ -n "${OVSDB_REMOTE:-}" ] && extra+=("--remote=$OVSDB_REMOTE")
    spawn ovsdb-server ovsdb-server "$db" \
        --remote="punix:$OVS_RUNDIR/db.sock" --remote=db:Open_vSwitch,Open_vSwitch,manager_options \
        "${extra[@]}" --pidfile="$OVS_RUNDIR/ovsdb-server.pid" \
        --log-file="$OVS_LOGDIR/ovsdb-server.log" -vconsole:info -vsyslog:off
    wait_for_socket "$OVS_RUNDIR/db.sock"
    ovs-vsctl --no-wait init
    ovs-vsctl --no-wait set Open_vSwitch . "external_ids:system-id=\"${OVS_SYSTEM_ID:-$HOSTNAME}\""
    if [ -z "${OVS_NO_VSWITCHD:-}" ]; then
        spawn ovs-vswitchd ovs-vswitchd "unix:$OVS_RUNDIR/db.sock" --pidfile="$OVS_RUNDIR/ovs-vswitchd.pid" \
            --log-file="$OVS_LOGDIR/ovs-vswitchd.log" -vconsole:info -vsyslog:off
    fi
}
