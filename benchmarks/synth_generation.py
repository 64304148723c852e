"Time the generation of the synthetic benchmark (target for the `mini` profile: under 2 minutes on 2 cores)."
import argparse, tempfile, time
from pathlib import Path
from s2vc_repro.config import get_config
from s2vc_repro.data.synthetic import write_benchmark, ensure_benchmark

def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--profile', default='mini', help='config profile whose SynthCfg is generated')
    ap.add_argument('--workers', type=int, default=None, help='processes (default: up to 2)')
    ap.add_argument('--out', default=None, help='output folder (default: a temporary folder, deleted afterwards)')
    a = ap.parse_args()
    cfg = get_config(a.profile).synth
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(a.out or tmp)
        t0 = time.perf_counter(); paths = write_benchmark(out, cfg, workers=a.workers); dt = time.perf_counter() - t0
        n = sum(1 for p in paths.values() for _ in (p/'videos').rglob('*.mp4'))
        mb = sum(f.stat().st_size for p in paths.values() for f in (p/'videos').rglob('*.mp4')) / 2**20
        t1 = time.perf_counter(); ensure_benchmark(out, cfg); dt2 = time.perf_counter() - t1
        print(f'profile={a.profile} videos={n} size={mb:.1f} MiB frames={cfg.frames} side={cfg.size}')
        print(f'generation: {dt:.1f} s ({n / dt:.0f} videos/s); re-check of a finished benchmark: {dt2:.3f} s')

if __name__ == '__main__': main()
