#!/usr/bin/env bash
# parbayes against the bare Thompson loop and its numba peer, interleaved so
# that the machine's drift hits all of them alike; prints each round and the
# medians. From the repository root:
#
#   cargo build --release --examples && pip install numba
#   benches/peers/side_by_side.sh 5
#
# With BEFORE=path/to/an/older/parbayes, every parbayes row also runs on
# that binary, as "before-NAME", in the same rounds.
set -euo pipefail
rounds=${1:-5}
bin=target/release/parbayes
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# steps/s of a run: the mean over its experiments' own timings.
sps() { python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['timing']; print(round(sum(x['steps_per_second'] for x in t)/len(t)))" "$1"; }
once() {  # once BINARY NAME ARGS...: one parbayes run, its steps/s
  local binary=$1 name=$2; shift 2
  "$binary" run "$@" --format json --out "$out/$name-$i" > "$out/$name-$i.json"
  echo "$name $(sps "$out/$name-$i.json")"
}
run() {  # run NAME ARGS...: the run on this build (and on BEFORE, if set)
  local name=$1; shift
  if [ -n "${BEFORE:-}" ]; then once "$BEFORE" "before-$name" "$@"; fi
  once "$bin" "$name" "$@"
}
for i in $(seq "$rounds"); do
  python3 benches/peers/numba_thompson.py 2000000 | sed 's/.*= \([0-9]*\) steps.*/numba \1/'
  target/release/examples/bare_thompson 2000000 | sed 's/.*= \([0-9]*\) steps.*/bare \1/'
  run one-learner-1-thread bandit-news --agents 1 --reps 1 --trials 2000000 --share never --threads 1
  run one-learner bandit-news --agents 1 --reps 1 --trials 2000000 --share never
  run 1000-learners bandit-news --agents 1000 --reps 1 --trials 2000
  run gridworld-ps-10 gridworld --agents 10 --reps 4
done | tee "$out/all"
echo "medians over $rounds rounds (steps/s):"
awk '{ v[$1] = v[$1] " " $2 } END { for (k in v) print k, v[k] }' "$out/all" |
  while read -r name values; do
    echo "$name $(echo "$values" | tr ' ' '\n' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"
  done
