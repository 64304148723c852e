"""DCLR training-step time relative to a MoCo step (same profile, backbone and batch; no data loading).

    nice -n 10 python benchmarks/dclr_step.py                     # mini: batch 32, cnn4, T=16, 32x32 crops
    nice -n 10 python benchmarks/dclr_step.py --steps 10 --json /tmp/dclr_step.json

A DCLR step augments two views of T+1 frames, sends v, s and d of both views through the one backbone
(three batches of 2B with gradient) and, with the search on, the s/d clips through the slow extractor (no
gradient); a MoCo step sends B query clips (gradient) and B key clips (no gradient). Variants timed:
`moco`, `dclr` (full objective, search and refinement on), `dclr-nosearch` (search='none'), `dclr-vv`
(L_VV only: v alone). Steps of the variants are interleaved (round robin) so that a change in machine
load hits them alike. Reported: the median wall time of a step and the median CPU time of the process
during a step (all threads; steadier than wall time on a shared machine), each with its ratio to MoCo's.
"""
import argparse, json, os, statistics, time
import torch
from s2vc_repro.config import get_config
from s2vc_repro.methods.base import build_method
from s2vc_repro.augment import ClipAugment

VARIANTS = {
    'moco': {'method.name': 'moco'},
    'dclr': {'method.name': 'dclr', 'dclr.start_epoch': 0},
    'dclr-nosearch': {'method.name': 'dclr', 'dclr.start_epoch': 0, 'dclr.search': 'none'},
    'dclr-vv': {'method.name': 'dclr', 'dclr.losses': ['vv'], 'dclr.search': 'none', 'dclr.act_loss': False},
}

def make_step(cfg, device, batch_size):
    "A closure doing one optimiser step of `cfg`'s method on a fixed random batch."
    torch.manual_seed(0)
    m = build_method(cfg).to(device); m.on_epoch_start(0)
    aug = ClipAugment(cfg.aug, cfg.data.size).to(device)
    T = cfg.data.frames + (1 if cfg.method.name == 'dclr' else 0)  # DCLR reads T+1 frames per clip
    side = cfg.data.resize or cfg.data.size
    batch = {'video': torch.randint(0, 256, (batch_size, 2, 3, T, side, side), dtype=torch.uint8, device=device),
             'index': torch.arange(batch_size, device=device)}
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    def step():
        t0, c0 = time.perf_counter(), time.process_time()
        out = m.training_step(batch, aug); opt.zero_grad(); out['loss'].backward(); opt.step(); m.after_step()
        if device.type == 'cuda': torch.cuda.synchronize()
        return time.perf_counter() - t0, time.process_time() - c0
    return step

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--profile', default='mini')
    ap.add_argument('--batch-size', type=int, default=32)
    ap.add_argument('--steps', type=int, default=5, help='timed steps per variant (after one warm-up step)')
    ap.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--json', default=None, help='also write the results to this JSON file')
    a = ap.parse_args()
    dev = torch.device(a.device)
    steps = {}
    for v in a.variants:
        cfg = get_config(a.profile, {**VARIANTS[v], 'train.batch_size': a.batch_size})
        steps[v] = make_step(cfg, dev, a.batch_size)
        steps[v]()  # warm-up
    times = {v: [] for v in steps}
    for _ in range(a.steps):
        for v, f in steps.items(): times[v].append(f())
    cfg = get_config(a.profile)
    print(f"profile {a.profile}: {cfg.model.backbone} x{cfg.model.width}, batch {a.batch_size}, T={cfg.data.frames}, "
          f"{cfg.data.size}px crops, {a.steps} steps each, device {dev}, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    med = lambda v, k: statistics.median(t[k] for t in times[v])
    base = {k: med('moco', k) for k in (0, 1)} if 'moco' in times else None
    rows = []
    for v, ts in times.items():
        w, c = med(v, 0), med(v, 1)
        rows.append({'variant': v, 'wall_median_s': w, 'wall_min_s': min(t[0] for t in ts), 'cpu_median_s': c,
                     'wall_ratio_to_moco': w / base[0] if base else None, 'cpu_ratio_to_moco': c / base[1] if base else None})
        print(f"{v:15s} wall median {w:7.3f} s (min {min(t[0] for t in ts):7.3f})  CPU median {c:7.3f} s"
              + (f"  x{w / base[0]:5.2f} / x{c / base[1]:5.2f} MoCo (wall / CPU)" if base else ''))
    if a.json:
        with open(a.json, 'w') as f: json.dump({'profile': a.profile, 'batch_size': a.batch_size, 'device': str(dev), 'rows': rows}, f, indent=1)

if __name__ == '__main__':
    main()
