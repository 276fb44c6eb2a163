# TLS of the central and controller images (bash, sourced after lib.sh). The policy values come
# from tls-policy.sh, which `ovn-deploy build images` generates from src/stunnel/policy.ts, so the
# images speak exactly what the stunnel configs speak.
#
# Why OVSDB's own TLS and not stunnel in the image: RAFT between central containers then runs over
# the same TLS listener code as the clients, with no per-peer stunnel client and loopback address
# plan inside every container; one daemon per database keeps the health checks honest (the TLS
# listener is the daemon); and the images carry no second TLS stack. What OVSDB cannot be told on
# its command line (ECDHE groups, no renegotiation, no session tickets) comes from OPENSSL_CONF.
# Known gap against the stunnel policy: OVSDB checks no CRL and the client does not check the
# server's name, only that the CA signed it.
. /usr/local/lib/ovn-deploy/tls-policy.sh

: "${OVN_PKI_DIR:=/etc/ovn-deploy/pki}"
: "${OVN_SSL_KEY:=$OVN_PKI_DIR/key.pem}" "${OVN_SSL_CERT:=$OVN_PKI_DIR/cert.pem}" "${OVN_SSL_CA:=$OVN_PKI_DIR/ca.pem}"

# Every OVSDB daemon and client of the image takes these (see ssl_args_for for the exception).
SSL_FILE_ARGS=(--private-key="$OVN_SSL_KEY" --certificate="$OVN_SSL_CERT" --ca-cert="$OVN_SSL_CA")
SSL_ARGS=("${SSL_FILE_ARGS[@]}" --ssl-protocols="$OVN_DEPLOY_TLS_PROTOCOLS" --ssl-ciphers="$OVN_DEPLOY_TLS_CIPHERS")

# ssl_args_for PROGRAM: sets SSL_ARGS_FOR to the options PROGRAM understands. ovn-controller
# before OVN 24.03 has no --ssl-protocols/--ssl-ciphers (it aborts on them): it gets the files
# only, OPENSSL_CONF still bounds its version to TLS 1.2, and its central enforces the ciphers.
ssl_args_for() {
    if "$1" --ssl-protocols="$OVN_DEPLOY_TLS_PROTOCOLS" --ssl-ciphers="$OVN_DEPLOY_TLS_CIPHERS" --version >/dev/null 2>&1; then
        SSL_ARGS_FOR=("${SSL_ARGS[@]}")
    else
        log "$1 takes no --ssl-protocols/--ssl-ciphers: TLS version from OPENSSL_CONF, ciphers from the server"
        SSL_ARGS_FOR=("${SSL_FILE_ARGS[@]}")
    fi
}

# require_pki: the key, certificate and CA are readable and come from a read-only mount. A
# writable file is a layer of the image or a read-write volume, and a file on the root mount is
# baked into the image: a key belongs to neither.
require_pki() {
    local f hint="mount the PKI directory read-only: -v DIR:$OVN_PKI_DIR:ro (key.pem, cert.pem, ca.pem), or set OVN_SSL_KEY, OVN_SSL_CERT, OVN_SSL_CA"
    for f in "$OVN_SSL_KEY" "$OVN_SSL_CERT" "$OVN_SSL_CA"; do
        [ -r "$f" ] || die "cannot read $f: $hint"
        [ ! -w "$f" ] || die "$f is writable: $hint"
        [ "$(stat -c %m "$f")" != / ] || die "$f is part of the image, not a mount: $hint"
    done
}

# require_tls_remotes NAME VALUE [unix]: every remote in VALUE (comma or space separated) is
# ssl:, or with "unix" also a local unix socket. Plaintext never leaves the container.
require_tls_remotes() {
    local name=$1 value=$2 allow=${3:-} r
    [ -n "$value" ] || die "$name is empty (expected ssl:HOST:PORT[,ssl:...])"
    for r in ${value//,/ }; do
        case $r in
            ssl:*) ;;
            unix:*) [ "$allow" = unix ] || die "$name: $r: expected ssl:HOST:PORT (this image speaks only TLS)" ;;
            *) die "$name: $r: expected ssl:HOST:PORT${allow:+ or unix:PATH} (this image speaks only TLS)" ;;
        esac
    done
}
