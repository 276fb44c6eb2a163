#!/usr/bin/env bash
# Installs the system packages ovn-deploy and its tests drive, idempotently.
# Usage: scripts/install-deps.sh [core|test|build|all]...   (default: core)
#   core  - what `ovn-deploy up` runs: OVN central + host, OVS, stunnel, iproute2, ping
#   test  - core + what the tests probe with (openssl, ethtool, procps, psmisc; systemd for systemd-analyze verify)
#   build - rpmbuild, rpmlint, podman/buildah, mmdebstrap, OVS source, ccache, compilers;
#           gnupg, rpmsign and createrepo_c for signed packages and a dnf repository
#   metadata - Neutron's OVN metadata agent, haproxy, sudo, curl (`up --metadata-agent`)
# Only Debian/Ubuntu (apt) and Fedora/EL (dnf) are known; anything else is an error.
set -euo pipefail

groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(core)

deb_core=(ovn-central ovn-host openvswitch-switch openvswitch-common stunnel4 openssl iproute2 iputils-ping procps)
deb_test=(ethtool psmisc sslscan systemd nftables openssh-client)
deb_build=(rpm rpmlint podman buildah skopeo runc mmdebstrap openvswitch-source ccache build-essential
  autoconf automake libtool python3 libssl-dev libcap-ng-dev libunbound-dev desktop-file-utils git
  gnupg createrepo-c)
deb_metadata=(neutron-ovn-metadata-agent haproxy sudo curl)
rpm_core=(ovn ovn-central ovn-host openvswitch stunnel openssl iproute iputils procps-ng)
rpm_test=(ethtool psmisc systemd nftables openssh-clients)
rpm_build=(rpm-build rpmlint podman buildah skopeo ccache gcc make autoconf automake libtool openssl-devel
  libcap-ng-devel unbound-devel python3 systemd-rpm-macros git
  gnupg2 rpm-sign createrepo_c)
rpm_metadata=(openstack-neutron-ovn-metadata-agent haproxy sudo curl)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: must run as root (installs system packages); try: sudo $0 ${groups[*]}" >&2
  exit 1
fi

if command -v apt-get >/dev/null 2>&1; then
  want=()
  for g in "${groups[@]}"; do
    case "$g" in
      core) want+=("${deb_core[@]}") ;;
      test) want+=("${deb_core[@]}" "${deb_test[@]}") ;;
      build) want+=("${deb_build[@]}") ;;
      metadata) want+=("${deb_metadata[@]}") ;;
      all) want+=("${deb_core[@]}" "${deb_test[@]}" "${deb_build[@]}" "${deb_metadata[@]}") ;;
      *) echo "install-deps: unknown group '$g' (expected core, test, build, metadata or all)" >&2; exit 2 ;;
    esac
  done
  missing=()
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all packages present (${groups[*]})"
    exit 0
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  # policy-rc.d keeps postinst scripts from starting the distro's own OVS/OVN services: ovn-deploy
  # starts what it needs itself, and a stray system ovsdb-server would be a foreign process to us.
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; created_policy=1
  fi
  trap '[ $created_policy -eq 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
elif command -v dnf >/dev/null 2>&1; then
  want=()
  for g in "${groups[@]}"; do
    case "$g" in
      core) want+=("${rpm_core[@]}") ;;
      test) want+=("${rpm_core[@]}" "${rpm_test[@]}") ;;
      build) want+=("${rpm_build[@]}") ;;
      metadata) want+=("${rpm_metadata[@]}") ;;
      all) want+=("${rpm_core[@]}" "${rpm_test[@]}" "${rpm_build[@]}" "${rpm_metadata[@]}") ;;
      *) echo "install-deps: unknown group '$g'" >&2; exit 2 ;;
    esac
  done
  dnf install -y "${want[@]}"
else
  echo "install-deps: no apt-get or dnf found; install by hand: OVN (central+host), Open vSwitch, stunnel, openssl, iproute2" >&2
  exit 1
fi
