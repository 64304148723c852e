#!/usr/bin/env bash
# Prepare Kinetics-400 under ROOT/k400: fetch (or link from --from DIR) and check the official files, extract, resize, split lists, verify.
# usage: data_scripts/prepare_k400.sh [ROOT] [options of `s2vc-repro data prepare`, e.g. --from DIR --jobs 8 --size 256]
# Rerunning continues where it stopped; the report is ROOT/k400/prepared.json (exit code 1 when verification fails).
set -euo pipefail
ROOT="${ROOT:-data}"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then ROOT="$1"; shift; fi
if command -v s2vc-repro >/dev/null 2>&1; then
  exec s2vc-repro data prepare k400 --root "$ROOT" "$@"
fi
exec python -c "import sys; from s2vc_repro.cli import main; sys.exit(main())" data prepare k400 --root "$ROOT" "$@"
