#!/bin/bash
# Usage: benches/peers/remote_processes.sh [BIN]  (BIN: a parbayes built with --features remote;
# default target/release/parbayes). Writes scratch folders out-K/ in the current directory.
BIN=${1:-target/release/parbayes}
# Aggregator throughput over loopback with K learner processes.
for round in 1 2; do
for K in 1 2 4; do
  rm -rf out-$K
  /usr/bin/time -f "%e s wall" "$BIN" run bandit-news --agents 40 --trials 4000 --reps 1 --processes $K --out out-$K --format json > s-$K.json 2> t-$K.err
  python3 - $K <<'PY'
import json,sys
k=sys.argv[1]; s=json.load(open(f"s-{k}.json")); t=s["timing"][0]; w=t["wire"]
sec=t["seconds"]
print(f"K={k} seconds={sec:.2f} msgs_in/s={w['messages_in']/sec:.0f} MB/s in+out={(w['bytes_in']+w['bytes_out'])/sec/1e6:.2f} steps/s={t['steps_per_second']:.0f} regret={s['results'][0]['final']['regret_per_agent']:.2f} in={w['bytes_in']} out={w['bytes_out']} msgs={w['messages_in']}")
PY
done; done
