"""Training-step time of S2VC-MoCo (and TFD-MoCo) against a MoCo step on the same batch.

    python benchmarks/s2vc_step.py                                   # mini profile, fresh flow of the mini architecture
    python benchmarks/s2vc_step.py --flow runs/flow-<hash>/flow.pt   # a trained flow
    python benchmarks/s2vc_step.py --profile smoke --steps 3 --set flow.hidden=16

One batch of the configured training set (or random uint8 clips with --random) is cached; each method runs
`--steps` timed optimiser steps on it after one warm-up step. The S2VC step is also split into its parts:
the key suppression alone (pool, encode, STD, decode, residual) is timed on the same key clips. A fresh
flow has the cost of a trained one (the same network), so no training is needed to measure speed.
"""
import argparse, json, os, time
import torch
from s2vc_repro.config import get_config
from s2vc_repro.methods.base import build_method
from s2vc_repro.augment import ClipAugment
from s2vc_repro.flows import build_flow, load_flow
from s2vc_repro.methods.s2vc import suppress

def batch_of(cfg, random: bool):
    "One training batch (mode 'pair') of the configured dataset, or random clips of its shape."
    B, T, R = cfg.train.batch_size, cfg.data.frames, cfg.data.resize or cfg.data.size
    if random: return {'video': torch.randint(0, 256, (B, 2, 3, T, R, R), dtype=torch.uint8)}
    from s2vc_repro.data.datasets import build_dataset
    ds = build_dataset(cfg, 'train', mode='pair')
    return torch.utils.data.default_collate([ds[i] for i in range(B)])

def step_time(m, batch, aug, steps: int) -> float:
    "Mean seconds of a training step (forward, backward, optimiser, momentum update)."
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-4)
    def step():
        out = m.training_step(batch, aug); opt.zero_grad(); out['loss'].backward(); opt.step(); m.after_step()
    step()
    t0 = time.time()
    for _ in range(steps): step()
    return (time.time() - t0) / steps

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--profile', default='mini')
    ap.add_argument('--root', default=os.environ.get('S2VC_DATA', 'data/mini'), help='data root')
    ap.add_argument('--flow', default='', help='trained flow.pt (default: a fresh flow of the configured architecture)')
    ap.add_argument('--steps', type=int, default=5)
    ap.add_argument('--threads', type=int, default=0, help='torch threads (0: leave as is)')
    ap.add_argument('--random', action='store_true', help='random clips instead of the dataset')
    ap.add_argument('--set', action='append', default=[], metavar='KEY=VALUE', help='config override (repeatable)')
    ap.add_argument('--json', default=None, help='also write the results to this JSON file')
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    import yaml
    over = {'data.root': a.root, **{k: yaml.safe_load(v) for k, v in (s.split('=', 1) for s in a.set)}}
    cfg = get_config(a.profile, over)
    torch.manual_seed(0)
    batch = batch_of(cfg, a.random)
    aug = ClipAugment(cfg.aug, cfg.data.size)
    flow = load_flow(a.flow, cfg.flow) if a.flow else build_flow(cfg.flow)
    res = {'profile': a.profile, 'batch': list(batch['video'].shape), 'threads': torch.get_num_threads(),
           'flow': dict(size=cfg.flow.size, hidden=cfg.flow.hidden, hr_blocks=cfg.flow.hr_blocks, lr_blocks=cfg.flow.lr_blocks)}
    for name in ('moco', 's2vc', 'tfd'):
        c = cfg.replace(**{'method.name': name})
        torch.manual_seed(0)
        m = build_method(c, flow=flow) if name == 's2vc' else build_method(c)
        res[f'{name}_step_s'] = step_time(m, batch, aug, a.steps)
        print(f"{name:5s} step: {res[f'{name}_step_s']:.3f} s", flush=True)
    key = ClipAugment(cfg.aug, cfg.data.size, normalize=False, strong=False)(batch['video'][:, 1])
    suppress(flow, key, cfg.s2vc.alpha)
    t0 = time.time()
    for _ in range(a.steps): _, kept = suppress(flow, key, cfg.s2vc.alpha)
    res['suppress_s'] = (time.time() - t0) / a.steps
    res['s2vc_over_moco'] = res['s2vc_step_s'] / res['moco_step_s']
    res['tfd_over_moco'] = res['tfd_step_s'] / res['moco_step_s']
    res['kept_share'] = kept.mean().item()
    print(f"suppression alone: {res['suppress_s']:.3f} s; S2VC/MoCo = {res['s2vc_over_moco']:.2f}x, TFD/MoCo = {res['tfd_over_moco']:.2f}x; "
          f"kept share at alpha {cfg.s2vc.alpha}: {res['kept_share']:.3f}")
    if a.json: open(a.json, 'w').write(json.dumps(res, indent=1))

if __name__ == '__main__':
    main()
