#!/bin/bash
# Installs what is missing, builds ferry twice (release, and ASan+UBSan) and runs the whole
# test suite under both builds. Exit status 0 only if everything passed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

tools/setup.sh

declare -A options=(
	[build]=""
	[build-asan]="-Db_sanitize=address,undefined -Db_lundef=false"
)
passed=0
failed=0
status=0
for dir in build build-asan; do
	echo "==> $dir: configure and build"
	if [ -f "$dir/build.ninja" ]; then
		# shellcheck disable=SC2086
		meson configure "$dir" ${options[$dir]} >/dev/null
	else
		# shellcheck disable=SC2086
		meson setup "$dir" ${options[$dir]} >/dev/null
	fi
	ninja -C "$dir"
	echo "==> $dir: meson test"
	if ! meson test -C "$dir" --print-errorlogs --num-processes 2; then
		status=1
	fi
	# Count test cases, not just test programs: Criterion's synthesis lines, plus one for
	# each non-Criterion test.
	log="$dir/meson-logs/testlog.txt"
	read -r p f < <(awk '
		/Synthesis: Tested:/ { for (i = 1; i <= NF; i++) { if ($i == "Passing:") p += $(i+1); if ($i == "Failing:" || $i == "Crashing:") f += $(i+1) } }
		END { print p + 0, f + 0 }' "$log")
	read -r sp sf < <(python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = 0
for line in open(sys.argv[1]):
    t = json.loads(line)
    if "Synthesis" in (t.get("stdout") or "") + (t.get("stderr") or ""):
        continue
    if t["result"] == "OK":
        p += 1
    else:
        f += 1
print(p, f)
PY
	)
	passed=$((passed + p + sp))
	failed=$((failed + f + sf))
done
cd "$root"
echo
echo "ferry tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || status=1
exit "$status"
