"""GPU check at the paper settings: does this GPU machine run the paper profile, and how fast?

    python benchmarks/gpu_check.py                       # everything, within 8 minutes on one GPU
    python benchmarks/gpu_check.py --steps 20 --json gpu_check.json
    python benchmarks/gpu_check.py --skip torchrun retrieval

On one CUDA device, with mixed precision (`train.amp`) and the paper profile's batch (`--batch` to change it):

1. **training steps**: steps/s and peak memory of MoCo, S2VC, DSM and DCLR on R3D-18 16x112^2 and on S3D
   32x128^2 — random uint8 clips through the real training step (`s2vc_repro.train.train_step`: augmentation on
   the GPU, autocast, GradScaler), S2VC with an untrained flow of the paper's architecture (the same cost as a
   trained one), DSM with random stand-ins for the shifted clip and optical flow that its data workers make;
   and the data workers' share of DSM: Farneback flow per clip on one CPU core (clips/s per worker);
2. **a 1-GPU torchrun launch** of the real training process (`torchrun --standalone --nproc_per_node=1 -m
   s2vc_repro.train RUN_DIR`, a tiny run on random clips): the DDP code path of a multi-GPU run;
3. **chunked retrieval at Kinetics-400 scale**: 240k gallery x 20k queries x 512-d (`retrieval_recall`).

Each part stops early when the time budget (`--budget`, 450 s) is spent and says so. Exit code 0 when every part
ran, 1 when one failed, 2 without a CUDA device (one line on stderr).
"""
import argparse, json, subprocess, sys, tempfile, time, warnings
from pathlib import Path

BACKBONES = {'r3d18': {'model.backbone': 'r3d18', 'data.frames': 16, 'data.size': 112, 'data.resize': 128},
             's3d': {'model.backbone': 's3d', 'data.frames': 32, 'data.size': 128, 'data.resize': 146}}
METHODS = ('moco', 's2vc', 'dsm', 'dclr')

def train_steps(torch, cfg, steps: int) -> dict:
    "Steps/s and peak memory of `cfg`'s method on random clips, AMP on one GPU (after two warm-up steps)."
    from s2vc_repro.augment import ClipAugment
    from s2vc_repro.methods.base import build_method, method_class
    from s2vc_repro.reproduce import random_batch
    from s2vc_repro.train import make_optimizer, train_step
    dev = torch.device('cuda')
    torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    m = build_method(cfg, **method_class(cfg.method.name).stand_ins(cfg)).to(dev).train()
    aug = ClipAugment(cfg.aug, cfg.data.size).to(dev)
    opt, scaler = make_optimizer(m.parameters(), cfg.train), torch.amp.GradScaler('cuda')
    batch = random_batch(cfg, m.data_mode, cfg.train.batch_size)
    for _ in range(2): train_step(m, batch, aug, opt, scaler=scaler, amp=True, device=dev)
    torch.cuda.synchronize(); t0 = time.time()
    for _ in range(steps): out = train_step(m, batch, aug, opt, scaler=scaler, amp=True, device=dev)
    torch.cuda.synchronize(); dt = time.time() - t0
    res = dict(steps_per_s=steps / dt, clips_per_s=steps * cfg.train.batch_size / dt, peak_gb=torch.cuda.max_memory_allocated() / 2**30,
               loss=float(out['loss']))
    del m, opt, aug
    return res

def flow_per_clip(cfg, clips: int = 3) -> dict:
    "Seconds of Farneback flow (`DSMDataset`'s work per item) for one clip of `cfg`'s frames at its resize, on one core."
    import os, numpy as np, cv2
    from s2vc_repro.warp import farneback_flow
    cv2.setNumThreads(1)
    x = np.random.default_rng(0).integers(0, 256, (clips, cfg.data.frames, cfg.data.resize, cfg.data.resize, 3), dtype=np.uint8)
    t0 = time.time()
    for c in x: farneback_flow(c)
    dt = (time.time() - t0) / clips
    return dict(seconds_per_clip=dt, clips_per_s_per_core=1 / dt, cores=os.cpu_count())

def torchrun_launch(timeout: float) -> dict:
    "A tiny run (random clips, 2 epochs) trained by `torchrun --nproc_per_node=1 -m s2vc_repro.train`; what its done.json says."
    from s2vc_repro.config import get_config, to_yaml
    with tempfile.TemporaryDirectory() as d:
        cfg = get_config('smoke', {'train.epochs': 2, 'train.batch_size': 8, 'train.amp': True})
        (Path(d)/'config.yaml').write_text(to_yaml(cfg))
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=1', '-m', 's2vc_repro.train', d,
               '--dataset', 's2vc_repro.train:random_clips', '--no-progress']
        t0 = time.time()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if r.returncode: raise RuntimeError(f'torchrun exited with code {r.returncode}: {(r.stderr or r.stdout).strip().splitlines()[-1:]}')
        done = json.loads((Path(d)/'done.json').read_text())
        return dict(seconds=time.time() - t0, world_size=done['world_size'], device=done['device'], loss=done['final']['loss'])

def retrieval(torch, gallery: int, queries: int, dim: int) -> dict:
    "Chunked R@k of `queries` against `gallery` random `dim`-d features on the GPU."
    from s2vc_repro.evaluate import retrieval_recall
    g = torch.Generator(device='cuda').manual_seed(0)
    gal, qry = torch.randn(gallery, dim, device='cuda', generator=g), torch.randn(queries, dim, device='cuda', generator=g)
    gc = torch.Generator().manual_seed(0)  # labels on the CPU (`retrieval_recall` reads them as arrays)
    gl, ql = torch.randint(0, 400, (gallery,), generator=gc), torch.randint(0, 400, (queries,), generator=gc)
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); t0 = time.time()
    r = retrieval_recall(qry, gal, ql, gl, (1, 5, 10, 20, 50), device='cuda')
    torch.cuda.synchronize()
    return dict(seconds=time.time() - t0, peak_gb=torch.cuda.max_memory_allocated() / 2**30, recall={k: round(v, 4) for k, v in r.items()})

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--steps', type=int, default=10, help='timed steps per method and backbone (after 2 warm-up steps)')
    ap.add_argument('--batch', type=int, default=None, help="clips per step (default: the paper profile's train.batch_size)")
    ap.add_argument('--budget', type=float, default=450, help='seconds after which the remaining parts are skipped')
    ap.add_argument('--skip', nargs='*', default=[], choices=['steps', 'torchrun', 'retrieval'], help='parts to leave out')
    ap.add_argument('--gallery', type=int, default=240_000); ap.add_argument('--queries', type=int, default=20_000); ap.add_argument('--dim', type=int, default=512)
    ap.add_argument('--json', default=None, help='also write the results to this JSON file')
    a = ap.parse_args(argv)
    warnings.filterwarnings('ignore')
    import torch
    if not torch.cuda.is_available():
        print(f'gpu_check: no CUDA device (torch {torch.__version__}, CUDA build {torch.version.cuda or "none"}): '
              'run it on a machine with an NVIDIA GPU and a CUDA build of torch', file=sys.stderr)
        return 2
    from s2vc_repro.config import get_config
    t_start, failed = time.time(), []
    left = lambda: a.budget - (time.time() - t_start)
    res = dict(device=torch.cuda.get_device_name(0), torch=torch.__version__, cuda=torch.version.cuda, steps={}, skipped=[])
    print(f"gpu_check on {res['device']} (torch {torch.__version__}, CUDA {torch.version.cuda})", flush=True)
    if 'steps' not in a.skip:
        for bb, over in BACKBONES.items():
            for name in METHODS:
                key = f'{name}/{bb}'
                if left() < 30: res['skipped'].append(key); continue
                cfg = get_config('paper', {**over, 'method.name': name, 'train.amp': True, 'data.workers': 0,
                                           **({'train.batch_size': a.batch} if a.batch else {})})
                try: r = train_steps(torch, cfg, a.steps)
                except Exception as e: r = dict(error=f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'); failed.append(key)
                res['steps'][key] = r
                print(f"  {key:12s} {cfg.data.frames}x{cfg.data.size}^2 batch {cfg.train.batch_size}: " +
                      (f"{r['steps_per_s']:.2f} steps/s, {r['clips_per_s']:.0f} clips/s, peak {r['peak_gb']:.1f} GiB" if 'error' not in r else f"FAILED {r['error']}"), flush=True)
                torch.cuda.empty_cache()
        for bb, over in BACKBONES.items():
            if left() < 20: res['skipped'].append(f'flow/{bb}'); continue
            cfg = get_config('paper', over)
            res['steps'][f'flow/{bb}'] = r = flow_per_clip(cfg)
            print(f"  {'flow/' + bb:12s} {cfg.data.frames}x{cfg.data.resize}^2 Farneback on 1 CPU core: {r['clips_per_s_per_core']:.1f} clips/s "
                  f"(DSM's data workers; {r['cores']} cores here)", flush=True)
    if 'torchrun' not in a.skip:
        if left() < 60: res['skipped'].append('torchrun')
        else:
            try: res['torchrun'] = torchrun_launch(min(300, left())); print(f"  torchrun 1 GPU: ok in {res['torchrun']['seconds']:.0f} s (world size {res['torchrun']['world_size']}, {res['torchrun']['device']})", flush=True)
            except Exception as e: res['torchrun'] = dict(error=str(e)); failed.append('torchrun'); print(f'  torchrun 1 GPU: FAILED {e}', flush=True)
    if 'retrieval' not in a.skip:
        if left() < 20: res['skipped'].append('retrieval')
        else:
            try:
                res['retrieval'] = retrieval(torch, a.gallery, a.queries, a.dim)
                print(f"  retrieval {a.gallery} x {a.queries} x {a.dim}: {res['retrieval']['seconds']:.1f} s, peak {res['retrieval']['peak_gb']:.1f} GiB", flush=True)
            except Exception as e: res['retrieval'] = dict(error=f'{type(e).__name__}: {e}'); failed.append('retrieval'); print(f'  retrieval: FAILED {e}', flush=True)
    res['wall_s'] = time.time() - t_start
    print(f"gpu_check: {'all parts ran' if not failed else 'FAILED: ' + ', '.join(failed)}"
          + (f"; skipped for time: {', '.join(res['skipped'])}" if res['skipped'] else '') + f" ({res['wall_s']:.0f} s)", flush=True)
    if a.json: Path(a.json).write_text(json.dumps(res, indent=1))
    return 1 if failed else 0

if __name__ == '__main__': sys.exit(main())
