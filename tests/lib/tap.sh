#!/bin/bash
# TAP helpers for the shell tests: `check "description" command...` runs one case and prints
# ok / not ok (with the command's output as comments); `within SECONDS command...` polls a
# command until it succeeds or the time is up; `tap_finish` prints the plan and summary and
# returns the status. The caller sets $dir to a scratch directory.
tests=0
failed=0

check() {
	tests=$((tests + 1))
	if "${@:2}" >"$dir/out" 2>&1; then
		echo "ok $tests - $1"
	else
		failed=$((failed + 1))
		echo "not ok $tests - $1"
		sed 's/^/# /' "$dir/out"
	fi
}

# Polls a command until it succeeds, for at most $1 seconds.
within() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

tap_finish() {
	echo "1..$tests"
	echo "# $((tests - failed)) passed, $failed failed"
	[ "$failed" -eq 0 ]
}

# For the lab tests: the lab's down removes the daemons' logs, so show their ends first if a case
# failed, then take the lab down and remove the scratch directory.
lab_cleanup() {
	if [ "$failed" -gt 0 ]; then
		for h in host-a host-b; do
			[ -f "/run/ferry/lab-$h.log" ] && tail -20 "/run/ferry/lab-$h.log" | sed "s/^/# $h: /"
		done
	fi
	"$lab" down >/dev/null 2>&1
	rm -rf "$dir"
}
