#!/usr/bin/env bash
# The realistic training events of the gnn (issue 20): the real TrackML particle lists of development events
# 1000, 1002, 1004-1009 (not 1001 and 1003, the evaluation lists; never 1010-1020) simulated three times each
# (seed 20, events 0-2 of each run), and four generated ttbar mu = 200 events with material secondaries
# (seed 2020). Simulated into SRC (default /tmp/gnn20/train), then linked into OUT (default /tmp/gnn20/data)
# under ids that order them for `deepreco train gnn`: the validation events are the last two (list 1009's third
# simulation and the fourth generated event), the first six (left to the module map alone when
# network_events is 20) are the first simulations of six lists. About 4 minutes on one core.
set -euo pipefail
SRC=${1:-/tmp/gnn20/train}
OUT=${2:-/tmp/gnn20/data}
LISTS=/work/shared/data/trackml/train
for L in 1000 1002 1004 1005 1006 1007 1008 1009; do
  [ -d "$SRC/l$L" ] || deepreco simulate -g trackml --particles "$LISTS/event00000$L-particles.csv.gz" -n 3 \
      --seed 20 --first-event-id "${L}00" --out "$SRC/l$L" --format parquet --threads 1
done
[ -d "$SRC/gen" ] || deepreco simulate -g ttbar --pileup 200 -n 4 --seed 2020 --secondaries --first-event-id 5000 \
    --out "$SRC/gen" --format parquet --threads 1
mkdir -p "$OUT"
link() {  # link <source prefix> <new id>
  for f in "$1"-*.parquet; do ln -sf "$f" "$OUT/$(printf 'event%09d' "$2")-${f##*-}"; done
}
for k in 0 1 2; do
  for L in 1000 1002 1004 1005 1006 1007 1008 1009; do
    id=$((k * 10000 + L)); [ "$k$L" = 21009 ] && id=90000
    link "$SRC/l$L/$(printf 'event%09d' $((L * 100 + k)))" "$id"
  done
done
for k in 0 1 2; do link "$SRC/gen/$(printf 'event%09d' $((5000 + k)))" $((30000 + k)); done
link "$SRC/gen/event000005003" 90001
