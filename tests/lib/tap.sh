#!/bin/bash
# TAP helpers for the shell tests: `check "description" command...` runs one case and prints
# ok / not ok (with the command's output as comments); `tap_finish` prints the plan and summary
# and returns the status. The caller sets $dir to a scratch directory.
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

tap_finish() {
	echo "1..$tests"
	echo "# $((tests - failed)) passed, $failed failed"
	[ "$failed" -eq 0 ]
}
