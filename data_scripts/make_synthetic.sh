#!/usr/bin/env bash
# Write the synthetic scene-biased benchmark (synth-ucf + synth-hmdb) as mp4 files with UCF101-style split lists.
# usage: data_scripts/make_synthetic.sh [PROFILE] [OUT]     (defaults: mini, data/<PROFILE>, where the profile looks)
# Re-running is cheap: a finished benchmark with the same SynthCfg is kept, an interrupted one is resumed,
# and one made with another SynthCfg is regenerated.
set -euo pipefail
PROFILE="${1:-${PROFILE:-mini}}"
OUT="${2:-${OUT:-data/$PROFILE}}"
if command -v s2vc-repro >/dev/null 2>&1; then
  exec s2vc-repro data synth --profile "$PROFILE" --out "$OUT"
fi
# without the console script (package not installed with pip): the same call through Python
exec python -c "import sys; from s2vc_repro.config import get_config; from s2vc_repro.data.synthetic import write_benchmark
for n, p in write_benchmark(sys.argv[2], get_config(sys.argv[1]).synth).items(): print(f'{n}: {p}')" "$PROFILE" "$OUT"
