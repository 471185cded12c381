#!/bin/bash
# ferry-center test (TAP, root): the inventory suite on a real PostgreSQL server started here
# (Debian's postgresql, its own data folder, a UNIX socket in a temporary folder); then, on each
# engine, ferry-center over two real ferryd: hosts added, their VMs listed, everything intact
# after a restart, a host that stops answering shown disconnected (not dropped), and bad input
# (names, states, a "host" that answers garbage or nothing) refused with the reason and
# changing nothing.
set -u
. "$(dirname "$0")/../lib/tap.sh"
ferryd=${FERRYD:?} ferryctl=${FERRYCTL:?} center_exe=${FERRY_CENTER:?}
test_inventory=${FERRY_TEST_INVENTORY:?}
dir=$(mktemp -d /tmp/ferry-center-XXXXXX)
chmod 755 "$dir"
pg=/usr/lib/postgresql/15/bin
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	[ -d "$dir/pgdata" ] && runuser -u postgres -- "$pg/pg_ctl" -D "$dir/pgdata" -m immediate stop >/dev/null 2>&1
	rm -rf "$dir"
}
trap cleanup EXIT

# PostgreSQL as its own user (it will not run as root), reachable only by its socket here.
mkdir -p "$dir/pgdata" "$dir/pgsock"
chown postgres "$dir/pgdata" "$dir/pgsock"
runuser -u postgres -- "$pg/initdb" -D "$dir/pgdata" --auth=trust -U postgres >"$dir/initdb.log" 2>&1 ||
	{ echo "Bail out! initdb failed"; sed 's/^/# /' "$dir/initdb.log"; exit 1; }
runuser -u postgres -- "$pg/pg_ctl" -D "$dir/pgdata" -w -t 60 -l "$dir/pgdata/server.log" \
	-o "-k $dir/pgsock -c listen_addresses='' -c fsync=off" start >/dev/null 2>&1 ||
	{ echo "Bail out! PostgreSQL did not start"; sed 's/^/# /' "$dir/pgdata/server.log"; exit 1; }
conninfo="host=$dir/pgsock dbname=postgres user=postgres"

check "the inventory suite passes on SQLite" env FERRY_INVENTORY= "$test_inventory"
check "the same suite passes on PostgreSQL $("$pg/postgres" --version | awk '{print $3}')" \
	env FERRY_INVENTORY="$conninfo" "$test_inventory"

# Two hosts, each a real ferryd on its own socket.
start_host() {
	printf 'host name %s\nportgroup add pg\n' "$1" >"$dir/$1.conf"
	"$ferryd" -s "$dir/$1.sock" -c "$dir/$1.conf" -- --no-huge --no-shconf -m 128 --no-pci \
		--no-telemetry --lcores='0@(0-1)' --file-prefix "center-$1-$$" >"$dir/$1.log" 2>&1 &
	pids+=($!)
	eval "pid_${1//-/_}=$!"
	within 20 "$ferryctl" -s "$dir/$1.sock" show version >/dev/null 2>&1 ||
		{ echo "Bail out! ferryd $1 did not start"; cat "$dir/$1.log"; exit 1; }
}
start_host host-a
start_host host-b
"$ferryctl" -s "$dir/host-a.sock" vm create web01 mem 16 mac 02:00:00:00:0c:01 \
	ip 10.0.12.1/24 portgroup pg >/dev/null

center_pid=
start_center() {
	"$center_exe" -s "$dir/center.sock" -i "$1" --refresh-ms 300 --timeout-ms 1000 \
		>>"$dir/center.log" 2>&1 &
	center_pid=$!
	pids+=("$center_pid")
	within 20 "$ferryctl" -s "$dir/center.sock" show center >/dev/null 2>&1 ||
		{ echo "Bail out! ferry-center did not start"; cat "$dir/center.log"; exit 1; }
}
# SIGTERM: ferry-center ends its tasks and exits 0.
stop_center() { kill "$center_pid" && wait "$center_pid"; }
c() { "$ferryctl" -s "$dir/center.sock" "$@"; }
field() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
# A refused command: exit 1 and the reason on stderr.
refused() {
	local want=$1 out
	shift
	out=$(c "$@" 2>&1 >/dev/null)
	local status=$?
	echo "$out"
	[ "$status" = 1 ] && grep -q -- "$want" <<<"$out"
}
hosts_listed() { [ "$(c -j host list | field 'len(d["hosts"])')" = "$1" ]; }

for engine in sqlite postgresql; do
	if [ "$engine" = sqlite ]; then where=$dir/center.db; else where=$conninfo; fi
	start_center "$where"
	check "$engine: ferry-center says its inventory is $engine at schema 3" \
		bash -c "'$ferryctl' -s '$dir/center.sock' show center | grep -q 'inventory: *$engine' &&
			'$ferryctl' -s '$dir/center.sock' show center | grep -q 'schema_version: *3'"
	check "$engine: host add host-a (its UNIX socket), waited for" c -w host add host-a "$dir/host-a.sock"
	check "$engine: host add host-b" c -w host add host-b "$dir/host-b.sock"
	check "$engine: both connected" bash -c "'$ferryctl' -s '$dir/center.sock' -j host list |
		python3 -c 'import json, sys; assert [h[\"state\"] for h in json.load(sys.stdin)[\"hosts\"]] == [\"connected\"] * 2'"
	web01_on_a() { c -j vm list | grep -q '"name": "web01", "host": "host-a", "state": "running"'; }
	check "$engine: vm list has web01, running on host-a" within 10 web01_on_a
	check "$engine: a dry-run balance task" c -w balance dry-run
	tasks_before=$(c -j tasks | field 'sorted((t["id"], t["kind"], t["state"], t["result"]) for t in d["tasks"])')
	check "$engine: stop ferry-center" stop_center
	start_center "$where"
	check "$engine: after a restart, every host, VM and task is there" bash -c "
		'$ferryctl' -s '$dir/center.sock' -j host list | grep -q '\"host-a\"' &&
		'$ferryctl' -s '$dir/center.sock' -j host list | grep -q '\"host-b\"' &&
		'$ferryctl' -s '$dir/center.sock' -j vm list | grep -q '\"web01\"' &&
		test \"\$('$ferryctl' -s '$dir/center.sock' -j tasks | python3 -c 'import json, sys; d = json.load(sys.stdin); print(sorted((t[\"id\"], t[\"kind\"], t[\"state\"], t[\"result\"]) for t in d[\"tasks\"]))')\" = \"$tasks_before\""
	check "$engine: a second host add of host-a is refused, nothing added" \
		bash -c "$(declare -f c refused field hosts_listed); ferryctl='$ferryctl' dir='$dir'; refused 'already' host add host-a /x && hosts_listed 2"
	check "$engine: stop ferry-center again" stop_center
	# The next engine starts from empty hosts: their names stay, their VMs too.
done

# From here on SQLite's center, with both hosts in.
start_center "$dir/center.db"
kill "$pid_host_b"
wait "$pid_host_b" 2>/dev/null
b_disconnected() { c -j host list | grep -q '"name": "host-b", "address": "[^"]*", "state": "disconnected"'; }
check "a host that stops answering is shown disconnected" within 10 b_disconnected
# Killed in the middle of a refresh, the first reason is the lost call ("connection to ferryd
# lost"); from the next refresh on it is the steady one: nothing listens there.
b_unreachable() { c -j host list >"$dir/hosts.json" && grep -q '"reason": "cannot reach ferryd' "$dir/hosts.json"; }
b_unreachable_within() { within 10 b_unreachable || { cat "$dir/hosts.json"; false; }; }
check "with the reason" b_unreachable_within
check "and is not dropped (nor are the others)" hosts_listed 2
check "its disconnection is an event" bash -c "'$ferryctl' -s '$dir/center.sock' events | grep -q 'host-b.*disconnected'"

# Bad input: names, states and references, each refused with the reason.
check "a host name with a slash is refused" refused "1 to 31 letters" host add 'a/b' /x
check "an address that is neither a socket path nor host:port is refused" refused "UNIX socket path" host add h1 nowhere
check "a port out of range is refused" refused "UNIX socket path" host add h1 10.0.0.1:99999
check "maintenance takes on or off" refused "on or off" host maintenance host-a maybe
check "maintenance of an unknown host" refused "no host" host maintenance nohost on
check "vmotion of an unknown VM" refused "no VM" vmotion nosuch host-a
check "vmotion to an unknown host" refused "no host" vmotion web01 nohost
check "vmotion to where it runs" refused "already" vmotion web01 host-a
check "a host with VMs is not removed" refused "evacuate it first" host remove host-a
check "an unknown task" refused "no task" task 999
check "a relative datastore path" refused "absolute path" datastore add ds1 relative/path
check "an unknown command" refused "unknown command\|no command\|not a command" frobnicate
# A "host" that answers garbage, and one that never answers: the task fails with the reason,
# nothing else changes.
# (It stays connected after its line, so the answer is read before the connection ends.)
socat UNIX-LISTEN:"$dir/garbage.sock",fork SYSTEM:'echo HTTP/1.0 400 nonsense; sleep 30' &
pids+=($!)
socat UNIX-LISTEN:"$dir/silent.sock",fork SYSTEM:'sleep 30' &
pids+=($!)
within 5 test -S "$dir/garbage.sock" && within 5 test -S "$dir/silent.sock"
task_failed_with() {
	local out
	out=$(c -w host add "$1" "$2" 2>&1)
	local status=$?
	echo "$out"
	[ "$status" = 1 ] && grep -q "error" <<<"$out" && grep -q -- "$3" <<<"$out"
}
check "a host that answers garbage: the task fails with the reason" task_failed_with h-garbage "$dir/garbage.sock" "malformed answer"
check "a host that answers nothing: the task fails when the call times out" task_failed_with h-silent "$dir/silent.sock" "lost"
check "neither was added" hosts_listed 2
check "host-a still connected, web01 still listed" bash -c "'$ferryctl' -s '$dir/center.sock' -j host list | grep -q '\"name\": \"host-a\", \"address\": \"[^\"]*\", \"state\": \"connected\"' &&
	'$ferryctl' -s '$dir/center.sock' -j vm list | grep -q web01"
check "ferry-center still serves" c show center
tap_finish
