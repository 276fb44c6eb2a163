#!/bin/sh
# Installs one role's RPMs into the image being built (`ovn-deploy build images`), then checks
# that the runtime image carries no compiler and no private key.
#   EL/Fedora bases: dnf installs the RPMs and the libraries they need from the base's repos.
#   Other bases (the local Debian base of `ovn-deploy build base-image`): rpm --nodeps; that base
#   already carries the libraries the binaries link (libssl, libcap-ng, libunbound).
set -eu
dir=$1

if command -v dnf >/dev/null 2>&1; then
    dnf install -y --setopt=install_weak_deps=False --setopt=tsflags=nodocs "$dir"/*.rpm
    dnf clean all
    rm -rf /var/cache/dnf /var/cache/yum
elif command -v microdnf >/dev/null 2>&1; then
    microdnf install -y --setopt=install_weak_deps=0 --setopt=tsflags=nodocs "$dir"/*.rpm
    microdnf clean all
elif command -v rpm >/dev/null 2>&1; then
    rpm -Uvh --nodeps --excludedocs "$dir"/*.rpm
else
    echo "install-rpms: the base image has neither dnf nor rpm: use an EL/Fedora base or 'ovn-deploy build base-image'" >&2
    exit 1
fi

for tool in gcc cc c++ clang; do
    if command -v "$tool" >/dev/null 2>&1; then
        echo "install-rpms: a compiler ($tool) is in the image; use a runtime base image" >&2
        exit 1
    fi
done
if grep -rlsI -e '-----BEGIN [A-Z ]*PRIVATE KEY-----' /etc /var/lib /root 2>/dev/null | grep -q .; then
    echo "install-rpms: private key material found in the image; PKI belongs in a mounted volume" >&2
    exit 1
fi
