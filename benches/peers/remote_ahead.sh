#!/bin/bash
# Usage: benches/peers/remote_ahead.sh [BIN]  (BIN: a parbayes built with --features remote;
# default target/release/parbayes). Writes scratch folders a/ and b/ in the current directory.
BIN=${1:-target/release/parbayes}
# --ahead against speed and accuracy: N = 40 (4000 trials, 1 rep, two rounds) and N = 100,000 (200 trials).
for A in 0 1 4 64; do
  for round in 1 2; do
    rm -rf a; "$BIN" run bandit-news --agents 40 --trials 4000 --reps 1 --processes 4 --ahead $A --out a --format json > a.json 2>/dev/null
    python3 -c "
import json; s=json.load(open('a.json')); t=s['timing'][0]; w=t['wire']; r=s['results'][0]['final']
print('ahead $A N=40: steps/s %.0f syncs/s %.0f MB/s %.2f regret %.2f' % (t['steps_per_second'], w['messages_in']/t['seconds'], (w['bytes_in']+w['bytes_out'])/t['seconds']/1e6, r['regret_per_agent']))"
  done
  rm -rf b; "$BIN" run bandit-news --agents 100000 --trials 200 --reps 1 --processes 4 --ahead $A --out b --format json > b.json 2>/dev/null
  python3 -c "
import json; s=json.load(open('b.json')); t=s['timing'][0]; w=t['wire']; r=s['results'][0]['final']
print('ahead $A N=100000: steps/s %.0f syncs %d MB/s %.1f regret %.3f optimal %.3f' % (t['steps_per_second'], w['messages_in'], (w['bytes_in']+w['bytes_out'])/t['seconds']/1e6, r['regret_per_agent'], r['optimal_action_rate']))"
done
