#!/bin/bash
# Installs what is missing, builds ferry twice (release, and ASan+UBSan) and runs the whole
# test suite under both builds. Exit status 0 only if everything passed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

tools/setup.sh
# The hugetlb pool that hugepage-backed VMs draw from (their tests migrate 64 MiB ones; ferryd's
# own DPDK memory stays off hugepages in tests). Only ever raised.
. tools/bench/hugepages.sh
reserve_hugepages 256

declare -A options=(
	[build]=""
	[build-asan]="-Db_sanitize=address,undefined -Db_lundef=false"
	# libFuzzer needs clang; this build runs only the fuzz targets, for a bounded time.
	[build-fuzz]="-Dfuzz=true -Dtests=disabled -Db_sanitize=address,undefined -Db_lundef=false"
)
declare -A compilers=([build]=cc [build-asan]=cc [build-fuzz]=clang)
passed=0
failed=0
status=0
failures=$(mktemp)
trap 'rm -f "$failures"' EXIT
for dir in build build-asan build-fuzz; do
	echo "==> $dir: configure and build"
	if [ -f "$dir/build.ninja" ]; then
		# shellcheck disable=SC2086
		meson configure "$dir" ${options[$dir]} >/dev/null
	else
		# shellcheck disable=SC2086
		CC=${compilers[$dir]} meson setup "$dir" ${options[$dir]} >/dev/null
	fi
	ninja -C "$dir"
	echo "==> $dir: meson test"
	if ! meson test -C "$dir" --print-errorlogs --num-processes 2; then
		status=1
	fi
	# Count test cases, not just test programs: a Criterion program reports its cases in a
	# synthesis line, a TAP script in its ok / not ok lines; a program that failed beyond its
	# cases (a sanitizer finding at exit, say) counts as one more failure; any other test
	# counts as one case.
	read -r p f < <(python3 - "$dir/meson-logs/testlog.json" "$failures" <<'PY'
import json, re, sys
passed = failed = 0
where = sys.argv[1].split("/meson-logs/")[0]
for line in open(sys.argv[1]):
    t = json.loads(line)
    out = (t.get("stdout") or "") + (t.get("stderr") or "")
    m = re.search(r"Synthesis: Tested: \d+ \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)", out)
    ok = t["result"] == "OK"
    if not ok:
        # Name what failed at the end of the log, where a CI summary that keeps only the
        # tail still shows it.
        why = re.findall(r"^(?:not ok \d+ .*|.*\[FAIL\].*)$", out, re.M)[:5]
        print(f"FAILED {where}: {t['name']} ({t['result']})", *(f"  {w}" for w in why),
              sep="\n", file=open(sys.argv[2], "a"))
    if m:
        passed += int(m.group(1))
        bad = int(m.group(2)) + int(m.group(3))
        failed += bad if (bad or ok) else 1
    elif re.search(r"^(not )?ok \d+ ", out, re.M):
        # TAP: one case per "ok N" / "not ok N" line.
        passed += len(re.findall(r"^ok \d+ ", out, re.M))
        failed += len(re.findall(r"^not ok \d+ ", out, re.M)) or (0 if ok else 1)
    elif ok:
        passed += 1
    else:
        failed += 1
print(passed, failed)
PY
	)
	passed=$((passed + p))
	failed=$((failed + f))
done
cd "$root"
echo
cat "$failures"
echo "ferry tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || status=1
exit "$status"
