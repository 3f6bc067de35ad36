#!/usr/bin/env bash
# Issue 7 on the device, one call: builds libhilo (CUDA) with the Python extension and the CLI, runs the package's
# pytest suite with torch (the CUDA tests included), then scripts/experiments/peft_qat.py on the fixture model (LoRDS
# PEFT vs QLoRA vs none, QAT vs PTQ, the HISA op vs the C++ API). Results under $OUT.
# Run with carry [".device-deps", ".fixture"] where .fixture/tinylm is a copy of ../shared/fixtures/tinylm.
# PARTS=hisa,peft,qat (default) picks the experiment's parts (PARTS=none: tests only); EXTRA passes more arguments.
# Time (H100, 2026-12-05): with PARTS=none, 150 s covered the build and 23 tests, not the whole suite; allow 300 s.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
python3 -c "import torch, nanobind, transformers; print('torch', torch.__version__, torch.cuda.get_device_name())"
scripts/device/build_targets.sh _hilo hilo_cli || exit 1
export PYTHONPATH=$PWD/build-device/python HILO_PYTHON_BUILT=1 HILO_BUILD_DIR=$PWD/build-device PYTHONUNBUFFERED=1
python3 -m pytest -q -rs tests/python/test_package.py tests/python/test_package_torch.py -p no:cacheprovider \
  2>&1 | tee "$OUT/pytest.log"
[ "${PARTS:-}" = none ] && exit 0
python3 scripts/experiments/peft_qat.py --model .fixture/tinylm --out "$OUT/peft_qat.json" \
  --hilo build-device/cli/hilo --parts "${PARTS:-hisa,peft,qat}" ${EXTRA:-} 2>&1 | grep -v "Loading weights" |
  tee "$OUT/peft_qat.log"
