#!/usr/bin/env bash
# Peak memory of `rwkvc forward --text` against the length of the text: streams random bytes
# (one token per byte, through a vocabulary of 256 single bytes) into the tiny RWKV-7 fixture
# and prints tokens, tokens/s and peak RSS for each length. Flat RSS = constant memory.
#
#   bench/long_stream_rss.sh [RWKVC_BINARY] [TOKEN_COUNTS...]
#   bench/long_stream_rss.sh build/rwkvc 10000 1000000
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tool=${1:-$root/build/rwkvc}
shift || true
counts=("${@:-10000 1000000}")
chunk=${CHUNK:-1024}
model=${MODEL:-$root/tests/models/rwkv7-tiny.safetensors}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for i in $(seq 0 255); do printf "%d b'\\\\x%02x' 1\n" "$i" "$i"; done > "$work/bytes.txt"

for n in ${counts[@]}; do
  head -c "$n" /dev/urandom > "$work/text.bin"
  echo "== $n tokens, --chunk $chunk"
  "$tool" forward --model "$model" --tokenizer "$work/bytes.txt" --text "$work/text.bin" --chunk "$chunk" | grep streamed
done
