#!/bin/bash
# Management test (TAP): ferryd's CLI over TCP with TLS and client certificates (--manage),
# against ferryctl -H and openssl's own client. A client with a certificate from the CA runs
# commands and gets the UNIX socket's answers; one without a certificate, with another CA's or
# with an expired one is refused before any command runs; garbage and plain text on the port
# leave ferryd serving. Certificates are made here with the openssl command.
set -u
. "$(dirname "$0")/../lib/tap.sh"
ferryd=${FERRYD:?} ferryctl=${FERRYCTL:?}
dir=$(mktemp -d /tmp/ferry-manage-XXXXXX)
sock=$dir/ferryd.sock
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
[ -n "${FERRY_TEST_KEEP:-}" ] && trap - EXIT

# A CA, ferryd's certificate (for 127.0.0.1), a client's, another CA's client, an expired one.
cd "$dir" || exit 1
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() {
	key "$1.key"
	openssl req -x509 -new -key "$1.key" -out "$1.crt" -days 2 -subj "/CN=$1" 2>/dev/null
}
# signed <name> <ca> <cn> [extension]
signed() {
	key "$1.key"
	openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$3" 2>/dev/null
	openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -out "$1.crt" \
		-days 2 ${4:+-extfile <(printf '%s\n' "$4")} 2>/dev/null
}
ca ca
ca other-ca
signed server ca ferryd "subjectAltName=IP:127.0.0.1"
signed admin ca admin
signed intruder other-ca admin
# Expired: issued for a day in 2020, by the right CA (openssl ca takes explicit dates).
key expired.key
openssl req -new -key expired.key -out expired.csr -subj "/CN=admin" 2>/dev/null
mkdir -p newcerts && : >index.txt && echo 01 >serial
cat >ca.cnf <<CNF
[ca]
default_ca = test
[test]
dir = $dir
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
default_md = sha256
policy = any
[any]
commonName = supplied
CNF
openssl ca -batch -config ca.cnf -cert ca.crt -keyfile ca.key -in expired.csr -out expired.crt \
	-startdate 20200101000000Z -enddate 20200102000000Z -notext >/dev/null 2>&1
cd - >/dev/null || exit 1
check "the test certificates were made" test -s "$dir/server.crt" -a -s "$dir/admin.crt" -a \
	-s "$dir/intruder.crt" -a -s "$dir/expired.crt"

port=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$ferryd" -s "$sock" --manage "127.0.0.1:$port" --cert "$dir/server.crt" --key "$dir/server.key" \
	--ca "$dir/ca.crt" -- --no-huge --no-shconf -m 128 --no-pci --no-telemetry \
	--lcores='0@(0-1)' >"$dir/ferryd.log" 2>&1 &
pid=$!
within 20 "$ferryctl" -s "$sock" show version >/dev/null 2>&1 ||
	{ echo "Bail out! ferryd did not start"; cat "$dir/ferryd.log"; exit 1; }

remote() { "$ferryctl" -H "127.0.0.1:$port" --ca "$dir/ca.crt" "$@"; }
as_admin() { remote --cert "$dir/admin.crt" --key "$dir/admin.key" "$@"; }
check "a client with a certificate from the CA runs a command" as_admin show version
check "and changes things, seen on the UNIX socket" \
	bash -c "'$ferryctl' -H 127.0.0.1:$port --ca '$dir/ca.crt' --cert '$dir/admin.crt' --key '$dir/admin.key' portgroup add remote-pg &&
		'$ferryctl' -s '$sock' show portgroups | grep -q remote-pg"
same_answer() {
	diff <(as_admin -j show portgroups) <("$ferryctl" -s "$sock" -j show portgroups) &&
		diff <(as_admin show ports) <("$ferryctl" -s "$sock" show ports)
}
check "the same answers as on the UNIX socket (text and JSON)" same_answer
check "a bad command gets its error and the connection's client goes on" \
	bash -c "! '$ferryctl' -H 127.0.0.1:$port --ca '$dir/ca.crt' --cert '$dir/admin.crt' --key '$dir/admin.key' port add 2>&1 | grep -q OK"
refused() {
	local out status
	out=$(remote "$@" show version 2>&1)
	status=$?
	echo "$out"
	[ "$status" -eq 2 ] && ! grep -q "uptime" <<<"$out"
}
check "a client with another CA's certificate is refused" \
	refused --cert "$dir/intruder.crt" --key "$dir/intruder.key"
check "a client with an expired certificate is refused" \
	refused --cert "$dir/expired.crt" --key "$dir/expired.key"
no_certificate() {
	local out
	out=$(printf 'show version\n' | timeout 10 openssl s_client -connect "127.0.0.1:$port" \
		-CAfile "$dir/ca.crt" -quiet 2>&1)
	echo "$out"
	! grep -q "^OK" <<<"$out"
}
check "a client without a certificate (openssl s_client) gets no answer" no_certificate
check "ferryd logged why it refused each" \
	bash -c "grep -q 'refused.*expired' '$dir/ferryd.log' && [ \$(grep -c 'management client .* refused' '$dir/ferryd.log') -ge 3 ]"
check "ferryctl refuses a ferryd whose certificate its CA did not sign" \
	bash -c "! '$ferryctl' -H 127.0.0.1:$port --ca '$dir/other-ca.crt' --cert '$dir/admin.crt' --key '$dir/admin.key' show version"
garbage() {
	head -c 65536 /dev/urandom | timeout 5 socat -u - "TCP:127.0.0.1:$port" 2>/dev/null
	printf 'show version\n' | timeout 5 socat - "TCP:127.0.0.1:$port" 2>/dev/null | grep -q "^OK" && return 1
	local senders=()
	for _ in $(seq 20); do
		head -c 517 /dev/urandom | timeout 2 socat -u - "TCP:127.0.0.1:$port" 2>/dev/null &
		senders+=($!)
	done
	wait "${senders[@]}"
	return 0
}
check "garbage and plain text on the TLS port get nothing" garbage
check "ferryd still serves the management port" as_admin show version
# A client that connects and never speaks TLS holds no slot for long: it is closed after 10 s.
idle_closed() {
	local start=$SECONDS
	# socat ends when ferryd closes the connection (the -T limit would end it at 30 s).
	timeout 40 socat -T 30 -u "TCP:127.0.0.1:$port" - >/dev/null 2>&1
	local took=$((SECONDS - start))
	echo "closed after $took s"
	[ "$took" -ge 9 ] && [ "$took" -le 20 ]
}
check "a client that never finishes its handshake is closed after 10 s" idle_closed
check "saying so in the log" grep -q "no handshake in 10 s" "$dir/ferryd.log"
check "and the UNIX socket" "$ferryctl" -s "$sock" show version
check "ferryd is alive" kill -0 "$pid"
tap_finish
