#!/usr/bin/env bash
# One prepared GPU benchmark run (issue 15): the whole bench on one device, written to one JSON file.
#
#   benchmarks/cuda.sh                       # on a GPU machine: make install, then everything on cuda (< 8 min)
#   benchmarks/cuda.sh --device cpu --quick  # the smoke run the test suite does (tiny batches, seconds)
#
# Options: --device DEV (default cuda), --quick, --out PATH (default benchmarks/results/cuda.json).
# Installs nothing beyond `make install` (skipped when PYTHON names an interpreter that already has augrobust).
# Stages: 1. `augrobust bench --compiled` (every transform and corruption at 32 and 224 px, kornia's look-alikes,
# the torch floors, the imagecorruptions loop, compiled vs eager apply steps); 2. DAMP's step cost
# (benchmarks/damp_cost.py); 3. generation throughput when the checkout has `augrobust generate`.
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
stage() { echo "== $1 ($((SECONDS - start)) s elapsed)" >&2; }

stage "bench on $device"
bench_args=(--device "$device" --compiled --out "$tmp/bench.json" --markdown "$tmp/bench.md" --quiet)
if [ "$quick" = 1 ]; then bench_args+=(--quick); else bench_args+=(--min-run-time 0.5); fi
"$PYTHON" -c 'import sys; from augrobust.cli import main; sys.exit(main())' bench "${bench_args[@]}"

stage "DAMP step cost on $device"
if [ "$quick" = 1 ]; then
  damp_args=(--arch resnet8_cifar --batch-size 8 --rounds 1 --steps 1)
else
  damp_args=(--arch resnet18_cifar --batch-size 128 --rounds 3 --steps 5)
fi
"$PYTHON" benchmarks/damp_cost.py --device "$device" "${damp_args[@]}" --json "$tmp/damp.json" >&2

stage "generation throughput"
if "$PYTHON" -c 'import sys; from augrobust.cli import main; sys.exit(main())' generate --help >/dev/null 2>&1; then
  echo '{"status": "augrobust generate exists but this script does not time it yet"}' > "$tmp/generate.json"
else
  echo '{"status": "no augrobust generate command in this checkout"}' > "$tmp/generate.json"
fi

stage "writing $out"
"$PYTHON" - "$tmp" "$out" "$((SECONDS - start))" "$quick" <<'PY'
import json, sys
from pathlib import Path
from augrobust._io import atomic_write_text
tmp, out, seconds, quick = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
report = {name: json.loads((tmp / f"{name}.json").read_text()) for name in ("bench", "damp", "generate")}
report["bench_markdown"] = (tmp / "bench.md").read_text()
report["wall_seconds"] = seconds
report["quick"] = quick
Path(out).parent.mkdir(parents=True, exist_ok=True)
atomic_write_text(out, json.dumps(report, indent=2))
print(report["bench_markdown"])
print(f"wrote {out} in {seconds} s", file=sys.stderr)
PY
