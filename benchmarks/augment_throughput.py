"""Throughput of the training clip augmentation (`s2vc_repro.augment.ClipAugment`).

Times crop+flip+jitter+grayscale+blur+normalise on a batch of uint8 clips and prints clips/s on the CPU
and, when there is one, on CUDA: the median over `--iters` calls and the best call, in wall time and (CPU) in
clips per CPU-second of this process — the steadier figure on a machine shared with other work. Default: 32 clips of 16 frames, 40x40 -> 32; the `mini`
profile's own clips are `--frames 8 --in-size 32`.

    python benchmarks/augment_throughput.py [--batch 32 --frames 16 --in-size 40 --size 32 --iters 20 --threads 0]
"""
import argparse, statistics, time
from dataclasses import replace
import torch
from s2vc_repro.config import get_config
from s2vc_repro.augment import ClipAugment

def throughput(aug, x, iters, warmup=3):
    "Clips per second of `aug(x)` (device-synchronised): (median call, best call, best call per CPU-second)."
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    for _ in range(warmup): aug(x)
    ts, cs = [], []
    for _ in range(iters):
        sync(); t, c = time.perf_counter(), time.process_time(); aug(x); sync()
        ts.append(time.perf_counter() - t); cs.append(time.process_time() - c)
    return x.shape[0] / statistics.median(ts), x.shape[0] / min(ts), x.shape[0] / max(min(cs), 1e-9)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--frames', type=int, default=16)
    ap.add_argument('--in-size', type=int, default=40)
    ap.add_argument('--size', type=int, default=32)
    ap.add_argument('--iters', type=int, default=20)
    ap.add_argument('--profile', default='mini')
    ap.add_argument('--threads', type=int, default=0, help='CPU threads (0: torch default)')
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    cfg = get_config(a.profile).aug
    x = torch.randint(0, 256, (a.batch, 3, a.frames, a.in_size, a.in_size), dtype=torch.uint8)
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    print(f"batch {a.batch} x (3, {a.frames}, {a.in_size}, {a.in_size}) uint8 -> {a.size}; torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    for dev in devices:
        xd = x.to(dev)
        for name, aug in [('full (mini aug)', ClipAugment(cfg, a.size, seed=0)),
                          ('all ops p=1', ClipAugment(replace(cfg, hflip_p=1., jitter_p=1., gray_p=1., blur_p=1.), a.size, seed=0)),
                          ('crop+flip only', ClipAugment(cfg, a.size, normalize=False, strong=False, seed=0))]:
            med, best, cpu = throughput(aug, xd, a.iters)
            print(f"{dev:5s} {name:16s} {med:7.0f} clips/s (median call), {best:7.0f} (best call)"
                  + (f", {cpu:7.0f} clips per CPU-second (best call)" if dev == 'cpu' else ''))

if __name__ == '__main__': main()
