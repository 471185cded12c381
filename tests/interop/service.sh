#!/bin/bash
# Service test (TAP): what meson install puts in place (programs, unit and drop-in, start-up and
# environment files, man pages, bash completion), the unit as systemd-analyze verifies it, and
# ferryd's readiness as systemd's Type=notify reads it (a notify socket of our own). Where PID 1
# is systemd, the unit also starts ferryd for real. Needs root for the last part (CI is root).
set -u
. "$(dirname "$0")/../lib/tap.sh"
build=${FERRY_BUILD_ROOT:?} ferryctl=${FERRYCTL:?}
dir=$(mktemp -d /tmp/ferry-service-XXXXXX)
dest=$dir/dest
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

check "meson install into a DESTDIR" meson install -C "$build" --destdir "$dest" --no-rebuild --quiet
prefix=$(meson introspect "$build" --buildoptions | python3 -c "import json, sys
print(next(o['value'] for o in json.load(sys.stdin) if o['name'] == 'prefix'))")
libdir=$(meson introspect "$build" --buildoptions | python3 -c "import json, sys
print(next(o['value'] for o in json.load(sys.stdin) if o['name'] == 'libdir'))")
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)
sysconf=$prefix/etc
[ "$prefix" = /usr ] && sysconf=/etc
for f in "$prefix/bin/ferryd" "$prefix/bin/ferryctl" "$unitdir/ferryd.service" \
	"$unitdir/ferryd.service.d/hugepages.conf" "$sysconf/ferry/ferryd.conf" \
	"$sysconf/ferry/ferryd.env" "$prefix/share/man/man8/ferryd.8" \
	"$prefix/share/man/man8/ferryctl.8" "$prefix/share/bash-completion/completions/ferryctl" \
	"$prefix/$libdir/wireshark/plugins/ferry.lua"; do
	check "installed: $f" test -s "$dest$f"
done
check "the programs are executable" test -x "$dest$prefix/bin/ferryd" -a -x "$dest$prefix/bin/ferryctl"

# The unit as installed, its paths moved under the DESTDIR, with its drop-in beside it.
units=$dir/units
mkdir -p "$units/ferryd.service.d"
sed "s|$prefix/bin/|$dest$prefix/bin/|g; s|$sysconf/ferry/|$dest$sysconf/ferry/|g" \
	"$dest$unitdir/ferryd.service" >"$units/ferryd.service"
cp "$dest$unitdir/ferryd.service.d/hugepages.conf" "$units/ferryd.service.d/"
check "systemd-analyze verify passes the unit and its drop-in" \
	env SYSTEMD_UNIT_PATH="$units:" systemd-analyze verify --man=no ferryd.service
check "the unit waits for ferryd's READY=1" grep -qx "Type=notify" "$units/ferryd.service"
check "the man pages render without a warning" \
	bash -c "for m in '$dest$prefix'/share/man/man8/*.8; do out=\$(MANWIDTH=80 man --warnings -l \"\$m\" 2>&1 >/dev/null); [ -z \"\$out\" ] || { echo \"\$m: \$out\"; exit 1; }; done"

# ferryd under a notify socket, as systemd runs a Type=notify service: READY=1 once the CLI
# answers, STOPPING=1 on SIGTERM.
notify=$dir/notify.sock
python3 - "$notify" >"$dir/notified" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
for _ in range(2):
    print(s.recv(4096).decode().replace("\n", " "), flush=True)
PY
listener=$!
within 10 test -S "$notify"
NOTIFY_SOCKET=$notify "$dest$prefix/bin/ferryd" -s "$dir/ferryd.sock" -c "$dest$sysconf/ferry/ferryd.conf" -- \
	--no-huge --no-shconf -m 128 --no-pci --no-telemetry --lcores='0@(0-1)' >"$dir/ferryd.log" 2>&1 &
pid=$!
check "ferryd says READY=1 to systemd" within 20 grep -q "READY=1" "$dir/notified"
check "and answers on its socket then" "$ferryctl" -s "$dir/ferryd.sock" show version
kill "$pid"
wait "$pid"
check "it exits 0 on SIGTERM" test $? -eq 0
pid=
check "saying STOPPING=1 first" within 10 grep -q "STOPPING=1" "$dir/notified"
wait "$listener" 2>/dev/null

if [ "$(ps -p 1 -o comm= 2>/dev/null)" = systemd ]; then
	# A machine run by systemd: the unit itself starts ferryd (a transient copy under /run).
	cp "$units/ferryd.service" /run/systemd/system/ferryd-test.service
	sed -i "s|--file-prefix=ferryd|--file-prefix=ferryd-test --no-huge -m 128 --no-pci|" \
		/run/systemd/system/ferryd-test.service
	systemctl daemon-reload
	check "systemctl start runs ferryd from the unit" systemctl start ferryd-test.service
	check "and it is active" systemctl is-active ferryd-test.service
	systemctl stop ferryd-test.service
	rm -f /run/systemd/system/ferryd-test.service
	systemctl daemon-reload
else
	echo "# PID 1 is not systemd here: the unit was verified, and ferryd's notify protocol tested, not started by systemd"
fi
tap_finish
