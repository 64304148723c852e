"""Forward + backward time of the video backbones (`s2vc_repro.backbones`) on one training batch.

Default: the `mini` profile's batch, 32 clips of 3x16x32x32, for cnn4 at width 1.0 and r3d18 at width 0.25,
on the CPU (and on CUDA when there is one). Prints the median seconds per step over `--repeats` steps after one
warm-up step (wall clock, and CPU time of the process: on a busy machine the wall time grows, the CPU
time much less), and clips per second.

    python benchmarks/backbone_speed.py [--nets cnn4:1.0 r3d18:0.25 --batch 32 --frames 16 --size 32 --repeats 3 --threads 0]
    python benchmarks/backbone_speed.py --nets all:0.25   # every backbone at width 0.25
"""
import argparse, time, statistics
import torch
from s2vc_repro.config import BACKBONES
from s2vc_repro.backbones import build_backbone, n_params

def step_seconds(model, x, repeats):
    "Median wall and process-CPU seconds of forward + backward on `x` (device-synchronised), after one warm-up step."
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    model.train(); wall, cpu = [], []
    for i in range(repeats + 1):
        sync(); t, c = time.perf_counter(), time.process_time()
        model(x).float().pow(2).mean().backward()
        sync()
        if i: wall.append(time.perf_counter() - t); cpu.append(time.process_time() - c)
        model.zero_grad(set_to_none=True)
    return statistics.median(wall), statistics.median(cpu)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--nets', nargs='+', default=['cnn4:1.0', 'r3d18:0.25'], help='name:width pairs; all:W for every backbone')
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--frames', type=int, default=16)
    ap.add_argument('--size', type=int, default=32)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: leave the default)')
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    nets = []
    for spec in a.nets:
        name, _, w = spec.partition(':')
        nets += [(n, float(w or 1.0)) for n in (BACKBONES if name == 'all' else [name])]
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    print(f'batch {a.batch}x3x{a.frames}x{a.size}x{a.size}, forward+backward, median of {a.repeats}, '
          f'torch {torch.__version__}, {torch.get_num_threads()} CPU threads')
    for dev in devices:
        for name, w in nets:
            torch.manual_seed(0)
            m = build_backbone(name, w).to(dev)
            x = torch.randn(a.batch, 3, a.frames, a.size, a.size, device=dev)
            s, c = step_seconds(m, x, a.repeats)
            print(f'{dev:5s} {name:11s} width {w:<5g} params {n_params(m) / 1e6:7.3f}M  {s:7.3f} s/step (wall)  '
                  f'{c:7.3f} CPU-s/step  {a.batch / s:8.1f} clips/s')

if __name__ == '__main__':
    main()
