#!/usr/bin/env bash
# The README's main command: installs dependencies, builds, and runs the QAQ demo on stories260K:
# text generated with the QAQ cache and its memory summary, then the quality the compression
# cost (mean KL divergence and top-1 agreement against the fp32 cache on real TinyStories text).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
shared=${QAQ_SHARED_DIR:-../shared}
model="$shared/models/stories260K.bin"
tok="$shared/models/tok512.bin"
text="$shared/data/tinystories_validation_head.txt"
for f in "$model" "$tok" "$text"; do
  if [ ! -f "$f" ]; then
    echo "demo: $f not found (set QAQ_SHARED_DIR; see README 'Models')" >&2
    exit 1
  fi
done
echo "== qaq generate --kv qaq: stories260K, greedy, 200 tokens"
./build/bin/qaq generate -m "$model" -z "$tok" -p "Once upon a time" -n 200 --temp 0 --kv qaq
echo
echo "== quality cost of the qaq cache against the fp32 cache on 4 x 256 tokens of TinyStories"
./build/bin/qaq perplexity -m "$model" -z "$tok" -f "$text" -c 256 --chunks 4 --kv qaq --kl-base \
  2>/dev/null | grep '^summary:'
