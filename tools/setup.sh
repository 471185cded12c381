#!/bin/bash
# Installs every Debian package ferry needs to build, test and run (idempotent, non-interactive).
set -euo pipefail

packages=(
	# build
	build-essential meson ninja-build pkg-config git
	libdpdk-dev dpdk dpdk-dev libpcap-dev libcriterion-dev libedit-dev libssl-dev libsystemd-dev
	# ferry-center's inventory: SQLite by default, PostgreSQL (the server for its tests)
	libsqlite3-dev libpq-dev postgresql
	clang clang-format libclang-rt-14-dev
	# run and test: namespaces, real Linux peers, dissection
	iproute2 iputils-ping arping socat tcpdump tshark ethtool procps kmod python3
)

# promtool, to check show metrics: Debian ships it in its Prometheus server package, whose
# service would start on install. Only the tool is taken out of the package.
promtool=/usr/local/lib/ferry/promtool
install_promtool() {
	local tmp
	tmp=$(mktemp -d)
	(cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download -qq prometheus >/dev/null; }) &&
		dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x" &&
		install -D -m 0755 "$tmp/x/usr/bin/promtool" "$promtool"
	local ret=$?
	rm -rf "$tmp"
	return $ret
}
if [ ! -x "$promtool" ] && [ "$(id -u)" -eq 0 ]; then
	install_promtool || echo "setup: could not take promtool from Debian's prometheus package" >&2
fi

# The Wireshark dissector of the migration protocol, where tshark and Wireshark load it.
wireshark_plugins=/usr/lib/x86_64-linux-gnu/wireshark/plugins
if [ "$(id -u)" -eq 0 ]; then
	install -D -m 0644 "$(dirname "$0")/../dist/wireshark/ferry.lua" "$wireshark_plugins/ferry.lua"
fi

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
	echo "setup: all ${#packages[@]} packages present"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "setup: missing packages (${missing[*]}); run as root to install them" >&2
	exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; the answer does not matter to us.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
echo "setup: done"
