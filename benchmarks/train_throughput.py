"""Pre-training throughput: wall time of a MoCo run, clips/s, and the share of step time spent waiting for data.

    python benchmarks/train_throughput.py                       # mini profile, its epochs, workers 0 and 1
    python benchmarks/train_throughput.py --epochs 2 --workers 0 1 2 --profile smoke

For each worker count it trains the run in a temporary folder (the synthetic benchmark is generated under
--root once), then measures decode alone (iterating the DataLoader) and compute alone (steps on one cached
batch), so a high data-wait share can be traced to decoding cost or to too few workers.
"""
import argparse, json, os, tempfile, time
from pathlib import Path
import torch
from s2vc_repro.config import get_config
from s2vc_repro.train import train, _make_loader
from s2vc_repro.data.datasets import ensure_data
from s2vc_repro.methods.base import build_method
from s2vc_repro.augment import ClipAugment

def decode_rate(cfg, mode, n_batches):
    "Clips/s of the DataLoader alone (decode + collate)."
    from s2vc_repro.data.datasets import build_dataset
    ds = build_dataset(cfg, 'train', mode=mode)
    loader, _ = _make_loader(ds, cfg, 0, 1, torch.device('cpu'))
    it, n = iter(loader), 0
    next(it)  # worker start-up is not decode cost
    t0 = time.time()
    for _, b in zip(range(n_batches), it): n += b['video'].shape[0]
    return n / (time.time() - t0)

def compute_rate(cfg, n_steps):
    "Clips/s of training steps on one cached batch (no data loading)."
    from s2vc_repro.data.datasets import build_dataset
    m = build_method(cfg); aug = ClipAugment(cfg.aug, cfg.data.size)
    ds = build_dataset(cfg, 'train', mode=m.data_mode)
    batch = torch.utils.data.default_collate([ds[i] for i in range(cfg.train.batch_size)])
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-4)
    def step():
        out = m.training_step(batch, aug); opt.zero_grad(); out['loss'].backward(); opt.step(); m.after_step()
    step()
    t0 = time.time()
    for _ in range(n_steps): step()
    return n_steps * cfg.train.batch_size / (time.time() - t0)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--profile', default='mini')
    ap.add_argument('--method', default='moco')
    ap.add_argument('--epochs', type=int, default=None, help="training epochs (default: the profile's)")
    ap.add_argument('--workers', type=int, nargs='+', default=[0, 1])
    ap.add_argument('--root', default=os.environ.get('S2VC_DATA', 'data'), help='data root (the synthetic benchmark is generated there once)')
    ap.add_argument('--probe-batches', type=int, default=10)
    ap.add_argument('--json', default=None, help='also write the results to this JSON file')
    a = ap.parse_args()
    over = {'data.root': a.root, 'method.name': a.method}
    if a.epochs is not None: over['train.epochs'] = a.epochs
    base = get_config(a.profile, over)
    t0 = time.time(); ensure_data(base); print(f'data ready in {time.time() - t0:.1f}s ({base.data.dataset} under {a.root})')
    print(f'torch threads: {torch.get_num_threads()}, cpu cores: {os.cpu_count()}, cuda: {torch.cuda.is_available()}')
    rows = []
    for w in a.workers:
        cfg = base.replace(**{'data.workers': w})
        with tempfile.TemporaryDirectory() as d:
            t0 = time.time(); res = train(cfg, d, progress=False); wall = time.time() - t0
        mode = build_method(cfg).data_mode
        rows.append({'workers': w, 'epochs': cfg.train.epochs, 'steps': res['steps'], 'wall_s': round(wall, 1),
                     'train_clips_per_s': round(res['clips_per_s'], 1), 'data_wait_share': round(res['data_wait_share'], 3),
                     'decode_only_clips_per_s': round(decode_rate(cfg, mode, a.probe_batches), 1),
                     'compute_only_clips_per_s': round(compute_rate(cfg, a.probe_batches), 1),
                     'final_loss': round(res['final']['loss'], 4)})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{a.profile} {a.method} ({base.model.backbone}, batch {base.train.batch_size}, {base.data.frames}x{base.data.size}^2 clips)")
    print(f"{'workers':>7} {'wall s':>8} {'clips/s':>8} {'data wait':>9} {'decode-only':>11} {'compute-only':>12}")
    for r in rows:
        print(f"{r['workers']:>7} {r['wall_s']:>8} {r['train_clips_per_s']:>8} {100 * r['data_wait_share']:>8.1f}% "
              f"{r['decode_only_clips_per_s']:>11} {r['compute_only_clips_per_s']:>12}")
    if a.json: Path(a.json).write_text(json.dumps(rows, indent=1))

if __name__ == '__main__': main()
