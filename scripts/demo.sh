#!/usr/bin/env bash
# The README's main command: installs dependencies, builds, and runs the demo on stories260K.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
shared=${QAQ_SHARED_DIR:-../shared}
model="$shared/models/stories260K.bin"
tok="$shared/models/tok512.bin"
if [ ! -f "$model" ]; then
  echo "demo: model not found at $model (set QAQ_SHARED_DIR; see README 'Models')" >&2
  exit 1
fi
./build/bin/qaq generate -m "$model" -z "$tok" -p "Once upon a time" -n 200 --temp 0
