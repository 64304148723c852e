"""Step time of a pre-training step in float32 against bfloat16 autocast on the CPU (`train.cpu_amp`).

    python benchmarks/amp_step.py                          # mini MoCo, batch 32, 2 threads, 10 rounds
    python benchmarks/amp_step.py --method diff-positive --threads 1 --rounds 5

One fixed batch of random uint8 clips of the profile's shape; each round times one step of each precision
(interleaved, so both see the same load), with `s2vc_repro.train.train_step` — the training loop's own
step. Printed: the median and best step in wall seconds and in CPU seconds of this process (the steadier
figures on a machine shared with other work), and whether this CPU has bfloat16 instructions (without
them autocast still runs, on emulated bfloat16, which is what `train.cpu_amp` avoids by staying float32).
"""
import argparse, json, statistics, time
import torch
from s2vc_repro.config import get_config
from s2vc_repro.methods.base import build_method
from s2vc_repro.augment import ClipAugment
from s2vc_repro.train import train_step, make_optimizer, cpu_bf16_supported, seed_all

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--profile', default='mini')
    ap.add_argument('--method', default='moco')
    ap.add_argument('--rounds', type=int, default=10)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--json', default=None, help='also write the results to this JSON file')
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg = get_config(a.profile, {'method.name': a.method})
    seed_all(0)
    B, T, R = cfg.train.batch_size, cfg.data.frames, cfg.data.resize or cfg.data.size
    batch = {'video': torch.randint(0, 256, (B, 2, 3, T, R, R), dtype=torch.uint8), 'label': torch.arange(B) % cfg.synth.n_classes,
             'index': torch.arange(B)}
    runs = {}
    for name, amp in (('float32', False), ('bfloat16 autocast', True)):
        m = build_method(cfg); aug = ClipAugment(cfg.aug, cfg.data.size); opt = make_optimizer(m.parameters(), cfg.train)
        runs[name] = (m, aug, opt, amp)
    step = lambda m, aug, opt, amp: train_step(m, batch, aug, opt, amp=amp, amp_dtype=torch.bfloat16, device='cpu')
    for r in runs.values(): step(*r); step(*r)  # warm-up
    wall, cpu = {k: [] for k in runs}, {k: [] for k in runs}
    for _ in range(a.rounds):
        for k, r in runs.items():
            t, c = time.perf_counter(), time.process_time(); step(*r)
            wall[k].append(time.perf_counter() - t); cpu[k].append(time.process_time() - c)
    res = {'profile': a.profile, 'method': a.method, 'batch': B, 'clip': [3, T, R, R], 'threads': torch.get_num_threads(),
           'cpu_bf16_instructions': cpu_bf16_supported(), 'torch': torch.__version__, 'rounds': a.rounds,
           'steps': {k: {'wall_median_s': round(statistics.median(wall[k]), 4), 'wall_best_s': round(min(wall[k]), 4),
                         'cpu_median_s': round(statistics.median(cpu[k]), 4), 'cpu_best_s': round(min(cpu[k]), 4)} for k in runs}}
    print(f"{a.profile} {a.method}, batch {B} x (3, {T}, {R}, {R}), {res['threads']} threads, "
          f"bfloat16 instructions: {'yes' if res['cpu_bf16_instructions'] else 'no'}, torch {torch.__version__}")
    for k, s in res['steps'].items():
        print(f"{k:18s} wall median {s['wall_median_s']:.4f} s, best {s['wall_best_s']:.4f} s; CPU median {s['cpu_median_s']:.4f} s, best {s['cpu_best_s']:.4f} s")
    f, b = res['steps']['float32'], res['steps']['bfloat16 autocast']
    print(f"bfloat16 / float32 step: {b['wall_best_s'] / f['wall_best_s']:.2f} (best wall), {b['cpu_median_s'] / f['cpu_median_s']:.2f} (median CPU)")
    if a.json:
        with open(a.json, 'w') as fh: json.dump(res, fh, indent=1)

if __name__ == '__main__': main()
