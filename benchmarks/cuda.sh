#!/usr/bin/env bash
# One prepared GPU benchmark run (issue 15): the whole bench on one device, written to one JSON file.
#
#   benchmarks/cuda.sh                       # on a GPU machine: make install, then everything on cuda (< 8 min)
#   benchmarks/cuda.sh --device cpu --quick  # the smoke run the test suite does (tiny sizes, seconds per stage)
#
# Options: --device DEV (default cuda), --quick, --out PATH (default benchmarks/results/cuda.json).
# Installs nothing beyond `make install` (skipped when PYTHON names an interpreter that already has augrobust).
# Stages, each a key of the report:
#   bench     `augrobust bench --compiled`: every transform and corruption at 32 and 224 px, kornia's look-alikes,
#             the torch floors, the imagecorruptions loop, compiled vs eager apply steps (+ bench_markdown);
#   damp      DAMP's step cost over SGD's (benchmarks/damp_cost.py; resnet18_cifar, batch 128);
#   sparse    SET / RigL / MEST / GraNet step cost over dense SGD (benchmarks/sparse_cost.py; resnet18_cifar,
#             batch 128);
#   generate  `augrobust generate`'s throughput with the corruptions on DEV (benchmarks/generate_throughput.py:
#             CIFAR-10-C layout from 400 built-in images, ImageNet-C layout from 24 JPEG photographs, float64 and
#             float32, against the imagecorruptions loop on a 2-image sample); "throughput" holds the images/s.
# A stage that fails is recorded as {"error": ...} and the next one still runs (a lent GPU is not wasted on one
# failure); the report is written either way, and the script then exits 1. "stage_seconds" times each stage.
set -euo pipefail
cd "$(dirname "$0")/.."

device=cuda quick=0 out=benchmarks/results/cuda.json
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --quick) quick=1; shift ;;
    --out) out="$2"; shift 2 ;;
    *) echo "cuda.sh: unknown option $1 (expected --device DEV, --quick, --out PATH)" >&2; exit 2 ;;
  esac
done

if [ -z "${PYTHON:-}" ]; then
  make install
  PYTHON=.venv/bin/python
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
failed=0

# run_stage NAME CMD...: runs CMD (which writes $tmp/NAME.json), its stdout and stderr to this stderr; on failure
# NAME.json says so. The elapsed seconds go to stages.tsv.
run_stage() {
  local name="$1" t0=$SECONDS rc=0
  shift
  echo "== $name on $device ($((SECONDS - start)) s elapsed)" >&2
  set +e
  "$@" 2>&1 | tee "$tmp/$name.log" >&2
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" = 0 ] && [ ! -s "$tmp/$name.json" ]; then rc="0 but no $name.json written"; fi
  if [ "$rc" != 0 ]; then
    failed=1
    echo "== $name FAILED (exit status $rc)" >&2
    "$PYTHON" - "$tmp/$name.json" "$rc" "$tmp/$name.log" <<'PY'
import json, sys
from pathlib import Path
tail = Path(sys.argv[3]).read_text(errors="replace")[-4000:]
Path(sys.argv[1]).write_text(json.dumps({"error": f"exit status {sys.argv[2]}", "output_tail": tail}))
PY
  fi
  printf '%s\t%s\n' "$name" "$((SECONDS - t0))" >> "$tmp/stages.tsv"
}
cli() { "$PYTHON" -c 'import sys; from augrobust.cli import main; sys.exit(main())' "$@"; }

bench_args=(--device "$device" --compiled --out "$tmp/bench.json" --markdown "$tmp/bench.md" --quiet)
if [ "$quick" = 1 ]; then
  bench_args+=(--quick)
  damp_args=(--arch resnet8_cifar --batch-size 8 --rounds 1 --steps 1)
  sparse_args=(--arch resnet8_cifar --batch-size 8 --rounds 1 --steps 1 --check-steps 2)
  generate_args=(--cifar-images 1 --imagenet-images 1 --ref-images 1 --dtypes float64)
else
  bench_args+=(--min-run-time 0.5)
  damp_args=(--arch resnet18_cifar --batch-size 128 --rounds 3 --steps 5)
  sparse_args=(--arch resnet18_cifar --batch-size 128 --rounds 5 --steps 5 --check-steps 10)
  generate_args=(--cifar-images 200 --imagenet-images 24 --ref-images 2 --dtypes float64 float32)
fi

run_stage bench cli bench "${bench_args[@]}"
run_stage damp "$PYTHON" benchmarks/damp_cost.py --device "$device" "${damp_args[@]}" --json "$tmp/damp.json"
run_stage sparse "$PYTHON" benchmarks/sparse_cost.py --device "$device" "${sparse_args[@]}" --json "$tmp/sparse.json"
# --skip-scaling: the 1 vs 2 process CIFAR-C runs are about sharing CPU cores, not about the device.
run_stage generate "$PYTHON" benchmarks/generate_throughput.py --device "$device" "${generate_args[@]}" \
  --skip-scaling --out "$tmp/generate.json"

echo "== writing $out ($((SECONDS - start)) s elapsed)" >&2
"$PYTHON" - "$tmp" "$out" "$((SECONDS - start))" "$quick" "$device" <<'PY'
import json, sys
from pathlib import Path
from augrobust._io import atomic_write_text
tmp, out, seconds, quick, device = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
report = {name: json.loads((tmp / f"{name}.json").read_text()) for name in ("bench", "damp", "sparse", "generate")}
markdown = tmp / "bench.md"
report["bench_markdown"] = markdown.read_text() if markdown.is_file() else ""
report["device"] = device
stages = (line.split("\t") for line in (tmp / "stages.tsv").read_text().splitlines())
report["stage_seconds"] = {name: int(s) for name, s in stages}
report["failed_stages"] = [name for name in ("bench", "damp", "sparse", "generate") if "error" in report[name]]
report["wall_seconds"] = seconds
report["quick"] = quick
Path(out).parent.mkdir(parents=True, exist_ok=True)
atomic_write_text(out, json.dumps(report, indent=2))
print(report["bench_markdown"])
print(f"wrote {out} in {seconds} s; stage seconds {report['stage_seconds']}", file=sys.stderr)
PY
if [ "$failed" = 1 ]; then
  echo "cuda.sh: some stages failed (see failed_stages in $out)" >&2
  exit 1
fi
