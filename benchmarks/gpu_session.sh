#!/usr/bin/env bash
# The GPU figures of benchmarks/README.md in one go, each phase under its own time limit so that a slow phase
# costs only itself: the bench table of STgram-MFN (plain / eager / compiled), the profile of its step per
# setting, `pytest -m cuda` beside three seeds of the plain and the fast path (metrics equal within seed
# spread), then the plain and eager rows of the other systems.
#
#   bash benchmarks/gpu_session.sh OUT_DIR           # on a machine with a GPU and asdbench installed
#   DEVICE=cpu QUICK=1 bash benchmarks/gpu_session.sh /tmp/out   # a quick dry run of the script itself
#
# Writes OUT_DIR/session.log (every phase's output) and the JSON of each phase.
set -u
OUT=${1:?usage: gpu_session.sh OUT_DIR}
mkdir -p "$OUT"
WORK=$(mktemp -d)
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
LOG="$OUT/session.log"
if [ -n "${QUICK:-}" ]; then
  BENCH=(--clips 16 --seconds 1 --epochs 2 --steps 1 --min-seconds 0 --batch-size 8)
  PROFILE=(--seconds 1 --batch-size 8 --steps 2); SIZE=tiny; SEEDS=(--set epochs=1 --size $SIZE); LIMIT=1
else
  BENCH=(--clips 512 --epochs 8 --min-seconds 1); PROFILE=(--steps 10); SIZE=small; SEEDS=(--set epochs=40 --size $SIZE)
  LIMIT=0
fi
DEADLINE=${DEADLINE:-520}  # seconds after the start: phase 4 starts no system after it
limit() { [ "$LIMIT" = 1 ] && echo 120 || echo "$1"; }

phase() {  # phase NAME SECONDS COMMAND...: run it under a limit, its output into the log
  local name=$1 seconds; seconds=$(limit "$2"); shift 2
  echo "=== $name: start $(date +%T), limit ${seconds}s" | tee -a "$LOG"
  local t0=$SECONDS
  timeout -k 10 "$seconds" "$@" >>"$LOG" 2>&1
  echo "=== $name: exit $? after $((SECONDS - t0)) s" | tee -a "$LOG"
}

{
  echo "=== machine"; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available(),
torch.cuda.get_device_name() if torch.cuda.is_available() else '', 'cpus', __import__('os').cpu_count())"
} >>"$LOG" 2>&1

# 1. The headline: STgram-MFN end to end and model-only, three variants, 10 s clips, batch 128 on a GPU.
phase bench-stgram-mfn 150 $PY benchmarks/throughput.py --systems stgram-mfn --variants plain,eager,compiled \
  --device "$DEVICE" "${BENCH[@]}" --json "$OUT/bench_stgram_mfn.json"

# 2. Where the step's time goes, per setting (memory format, fused Adam, compilation, CUDA graphs).
phase profile 110 $PY benchmarks/profile_step.py --system stgram-mfn --device "$DEVICE" "${PROFILE[@]}" \
  --settings eager,eager-nchw,eager-fused-adam,compiled,compiled-nchw,compiled-cudagraphs --json "$OUT/profile.json"

# 3. Correctness, in parallel (no timing here): the CUDA tests, and three seeds of the plain and the fast path.
$PY -c "
from asdbench.config import resolve; from asdbench.plugins import get_plugins; from asdbench.data.plan import load_dataset
p = get_plugins(); c = resolve(p, 'stgram-mfn', set_values={'dataset.size': '$SIZE'})
print('synthetic clips:', len(load_dataset(p, c).clips('train')))" >>"$LOG" 2>&1   # generated once, before the runs
PLAIN=(--set precision=fp32 --set channels_last=false --set compile=false --set cache=false)
FAST=(--set compile=true)
pids=()
for seed in 0 1 2; do
  for path in plain fast; do
    if [ $path = plain ]; then extra=("${PLAIN[@]}"); else extra=("${FAST[@]}"); fi
    timeout -k 10 "$(limit 200)" $PY benchmarks/run_systems.py --systems stgram-mfn --seed $seed --no-tracking --quiet \
      --set device="$DEVICE" "${SEEDS[@]}" "${extra[@]}" --json "$WORK/seeds_${path}_$seed.json" \
      >"$WORK/seeds_${path}_$seed.log" 2>&1 &
    pids+=($!)
  done
done
phase pytest-cuda 170 $PY -m pytest -n 0 -m cuda tests/integration/test_cuda.py -q -p no:cacheprovider
for pid in "${pids[@]}"; do wait "$pid"; done
cat "$WORK"/seeds_*.log >>"$LOG"
$PY - "$WORK" "$OUT/seeds.json" <<'EOF' >>"$LOG" 2>&1
import json, pathlib, statistics, sys
work, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
runs = {}
for f in sorted(work.glob("seeds_*.json")):
    _, path, seed = f.stem.split("_")
    runs.setdefault(path, {})[int(seed)] = json.loads(f.read_text())[0]
out.write_text(json.dumps(runs, indent=2) + "\n")
for path, seeds in runs.items():
    for key in ("auc_avg", "pauc_avg", "mauc_avg"):
        v = [100 * r[key] for r in seeds.values()]
        print(path, key, [round(x, 2) for x in v], "mean", round(statistics.mean(v), 2),
              "std", round(statistics.stdev(v), 2) if len(v) > 1 else "-")
    print(path, "wall s", [r["wall_s"] for r in seeds.values()])
EOF

# 4. The other systems, plain and eager rows, as long as the time allows (one process each: a system cut short
#    loses only its own rows).
for system in stgram-mfn-cee logmel-mfn tgram-mfn spec-mfn dcase-ae idnn mobilenetv2 glow-aff; do
  [ "$SECONDS" -lt "$DEADLINE" ] || { echo "=== bench-$system: skipped, past the deadline" | tee -a "$LOG"; continue; }
  phase "bench-$system" 45 $PY benchmarks/throughput.py --systems "$system" --variants plain,eager --device "$DEVICE" \
    "${BENCH[@]}" --json "$WORK/bench_$system.json"
done
$PY - "$WORK" "$OUT/bench_systems.json" <<'EOF' >>"$LOG" 2>&1
import json, pathlib, sys
rows = [row for f in sorted(pathlib.Path(sys.argv[1]).glob("bench_*.json")) for row in json.loads(f.read_text())["rows"]]
pathlib.Path(sys.argv[2]).write_text(json.dumps(rows, indent=2) + "\n")
print("bench rows of the other systems:", len(rows))
EOF
echo "=== done $(date +%T)" | tee -a "$LOG"
