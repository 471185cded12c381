#!/bin/bash
# Checks the layering: no #include points up a layer, no header include loop, no module-level
# mutable global. Layers, bottom up:
#   dataplane <- vswitch <- vm <- migrate <- host <- cli <- ferryd, ferryctl, center
# (cli knows no command and includes nothing of host; center drives hosts through their CLI and
# includes only cli; bench/ and tests/ may include anything).
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A rank=([dataplane]=0 [vswitch]=1 [vm]=2 [migrate]=3 [host]=4 [cli]=5 [ferryd]=6
	[ferryctl]=6 [center]=6)
bad=0
for dir in "${!rank[@]}"; do
	for f in $(git ls-files "$dir/*.c" "$dir/*.h"); do
		while IFS= read -r inc; do
			target=${inc%%/*}
			[ -n "${rank[$target]+x}" ] || continue
			if [ "${rank[$target]}" -gt "${rank[$dir]}" ]; then
				echo "up a layer: $f includes \"$inc\""
				bad=1
			fi
			# cli is generic: it sits above host but must not know it.
			if [ "$dir" = cli ] && [ "$target" != cli ]; then
				echo "cli is generic: $f includes \"$inc\""
				bad=1
			fi
			# center knows hosts only through their CLI.
			if [ "$dir" = center ] && [ "$target" != cli ] && [ "$target" != center ]; then
				echo "center drives hosts through their CLI: $f includes \"$inc\""
				bad=1
			fi
		done < <(sed -n 's/^#include "\([a-z_]*\/[a-z_]*\.h\)".*/\1/p' "$f")
	done
done

# Header include loops: a depth-first walk over project headers.
python3 - <<'PY' || bad=1
import os, re, subprocess, sys
files = subprocess.run(["git", "ls-files", "*.h", "*.c"], capture_output=True, text=True).stdout.split()
edges = {}
for f in files:
    d = os.path.dirname(f)
    out = []
    for m in re.finditer(r'^#include "([^"]+)"', open(f).read(), re.M):
        inc = m.group(1)
        path = inc if os.path.exists(inc) else os.path.join(d, inc)
        if os.path.exists(path) and path.endswith(".h"):
            out.append(os.path.normpath(path))
    edges[f] = out
state = {}
def walk(f, stack):
    state[f] = 1
    for g in edges.get(f, []):
        if state.get(g) == 1:
            print("include loop: " + " -> ".join(stack[stack.index(g):] + [g]))
            return False
        if state.get(g) is None and not walk(g, stack + [g]):
            return False
    state[f] = 2
    return True
ok = all(walk(f, [f]) for f in files if state.get(f) is None)
sys.exit(0 if ok else 1)
PY

# Module-level mutable globals: a file-scope variable that is neither const nor a DPDK log type.
while IFS= read -r hit; do
	echo "module-level mutable global: $hit"
	bad=1
done < <(git ls-files 'dataplane/*.c' 'vswitch/*.c' 'vm/*.c' 'migrate/*.c' 'host/*.c' 'cli/*.c' \
	'center/*.c' ':!center/main.c' |
	xargs grep -nE '^(static )?(struct|enum|unsigned|int|bool|char|uint[0-9]+_t|int[0-9]+_t|double|size_t|void \*)[^(]*(=|;)\s*$' |
	grep -vE ':\s*(static )?const |\bconst\b.*\[|RTE_LOG_REGISTER|:(struct|enum) \w+ \{' || true)
[ "$bad" = 0 ] && echo "layers: no include up a layer, no include loop, no module-level mutable global"
exit "$bad"
