#!/usr/bin/env bash
# Two builds' `throughput` benches interleaved, so that the machine's drift
# hits both alike: ROUNDS rounds, the order alternating, then each bench's
# throughput per round and the ratio of the medians. From the repository
# root, with each build's bench binary (`cargo bench --no-run --bench
# throughput` prints its path):
#
#   benches/peers/throughput_side_by_side.sh OLD_BINARY NEW_BINARY 4 [FILTER]
set -euo pipefail
old=$1 new=$2 rounds=${3:-4} filter=${4:-}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for i in $(seq "$rounds"); do
  for b in old new; do
    if [ $((i % 2)) -eq 0 ]; then b=$([ "$b" = old ] && echo new || echo old); fi
    bin=$([ "$b" = old ] && echo "$old" || echo "$new")
    echo "== round $i build $b"
    "$bin" --bench --noplot --discard-baseline --warm-up-time 1 --measurement-time 4 $filter 2>&1
  done
done > "$out"
python3 - "$out" <<'PY'
import collections, re, statistics, sys
unit = {"elem/s": 1, "Kelem/s": 1e3, "Melem/s": 1e6, "Gelem/s": 1e9}
rows, order, build, name = collections.defaultdict(lambda: collections.defaultdict(list)), [], None, None
for line in open(sys.argv[1]):
    if m := re.match(r"== round \d+ build (\w+)", line):
        build = m.group(1)
    elif re.match(r"^[a-z_]+/", line):
        name = line.strip()
        order += [name] if name not in order else []
    elif (m := re.search(r"thrpt:\s+\[\S+ \S+ (\S+) (\S+)", line)) and name:
        rows[name][build].append(float(m.group(1)) * unit[m.group(2)])
print("| bench | old, k/s per round | new, k/s per round | new / old (medians) |")
print("|---|---|---|---|")
for n in order:
    o, w = rows[n]["old"], rows[n]["new"]
    f = lambda xs: ", ".join(f"{x / 1e3:.0f}" for x in xs)
    print(f"| {n} | {f(o)} | {f(w)} | {statistics.median(w) / statistics.median(o):.2f} |")
PY
