"""Does the testbed exercise each paper's mechanism? One number per method, on the mini benchmark.

    python benchmarks/testbed_mechanisms.py --runs runs --out results/mini

- S2VC: how much of the scene a linear probe still reads from the motion-preserved key clip vs the plain key
  clip (background family, chance 25%), and the share of the key clip's frame-difference energy that lies
  inside the flow's band (what survives average-pooling to the flow's resolution: only that part can be kept
  or suppressed by the flow).
- DSM: can a motion probe tell a clip's intra-video negative (temporal disturbance) from its positive (spatial
  warp)? A logistic regression on the difference of the two clips' motion (the light object's displacement per
  frame) separates (anchor, negative) pairs from (anchor, positive) pairs; 50% means the negative moves like
  the anchor (DSM's negative would then push motion away), more means it is a different motion.
- DCLR: the share of top-1 cross-video search results that have the query's class (chance ~12.5%), searching
  a trained DCLR backbone's features of frame differences (DCLR's default), static frames and RGB clips.

The trained runs come from the run store (trained there first if missing). With --out, the numbers are also
written to <out>/bench-mechanisms.md, which the bench-bias notebook shows.
"""
import argparse, sys, time
from pathlib import Path
import numpy as np, pandas as pd, torch
import torch.nn.functional as F
from s2vc_repro.config import get_config
from s2vc_repro.augment import ClipAugment, to_float
from s2vc_repro.data.datasets import build_dataset, read_meta, collate_clips
from s2vc_repro.data.synthetic import ensure_benchmark
from s2vc_repro.methods.base import build_method
from s2vc_repro.methods.dclr import dclr_views
from s2vc_repro.methods.s2vc import suppress
from s2vc_repro.flows import load_flow
from s2vc_repro.runs import RunStore, load_backbone
from s2vc_repro.records import atomic_write, git_commit
sys.path.insert(0, str(Path(__file__).parent))
from s2vc_scene_cue import static_features, probe

def families(cfg, ds, n):
    "Background family of the first `n` videos of `ds`."
    meta = read_meta(cfg.data.root, cfg.data.dataset).set_index('path')
    return np.array([meta.loc['/'.join(Path(ds.records[i].path).parts[-2:]), 'family'] for i in range(n)])

def band_share(x: torch.Tensor, size: int) -> float:
    "Share of the frame-difference energy of clips (B, C, T, H, W) that survives average-pooling the frames to size x size."
    low = F.interpolate(F.adaptive_avg_pool3d(x, (x.shape[2], size, size)), size=x.shape[2:], mode='nearest')
    return float(low.diff(dim=2).pow(2).sum() / x.diff(dim=2).pow(2).sum())

def s2vc_check(cfg, store, n):
    "Scene probe on plain vs motion-preserved key clips, and the flow band's share of the frame-difference energy."
    cfg = cfg.replace(**{'method.name': 's2vc'})
    store.pretrain(cfg)  # trains the profile's flow first, if needed
    flow = load_flow(store.flow_dir(cfg)/'flow.pt', cfg.flow)
    ds = build_dataset(cfg, 'train', mode='train'); n = min(n, len(ds))
    key = ClipAugment(cfg.aug, cfg.data.size, normalize=False, strong=False, seed=0)(torch.stack([ds[i]['video'] for i in range(n)]))
    fam = families(cfg, ds, n)
    out = torch.cat([suppress(flow, c, cfg.s2vc.alpha, cfg.s2vc.strategy, cfg.flow.size)[0] for c in key.split(50)])
    return {'S2VC: scene probe on the key clip (%)': 100 * probe(static_features(key), fam),
            'S2VC: scene probe on the motion-preserved key clip (%)': 100 * probe(static_features(out), fam),
            "S2VC: frame-difference energy inside the flow's band (%)": 100 * band_share(key, cfg.flow.size)}

def light_track(x: torch.Tensor) -> np.ndarray:
    "Per-frame displacement (dx, dy) of the light object in uint8-scaled clips (B, C, T, H, W): (B, 2 (T-1))."
    m = (x.amin(1) > 200).float()  # (B, T, H, W)
    B, T, H, W = m.shape
    ph = lambda n: torch.exp(2j * torch.pi * torch.arange(n) / n)
    cx = torch.angle((m.sum(2) * ph(W)).sum(-1)) * W / (2 * torch.pi)
    cy = torch.angle((m.sum(3) * ph(H)).sum(-1)) * H / (2 * torch.pi)
    wrap = lambda z, n: (z + n / 2) % n - n / 2
    return torch.cat([wrap(cx.diff(dim=1), W), wrap(cy.diff(dim=1), H)], 1).numpy()

def dsm_check(cfg, n):
    "Held-out accuracy of a probe telling (anchor, negative) from (anchor, positive) pairs by their motion difference."
    out = {}
    for neg in ('mdisturb', 'tshift', 'scaling'):
        c = cfg.replace(**{'method.name': 'dsm', 'dsm.negative': neg})
        m = build_method(c); ds = m.build_dataset(c)
        k = min(n, len(ds))
        batch = collate_clips([ds[i] for i in range(k)])
        if 'negative' in ds[0]: batch['negative'] = torch.stack([ds[i]['negative'] for i in range(k)])
        if 'flow' in ds[0]: batch['flow'] = torch.stack([ds[i]['flow'] for i in range(k)])
        a = to_float(batch['video'])
        pos, negc = m.tps(a), to_float(m.negative_source(batch))
        ta, tp, tn = (light_track((255 * v).round()) for v in (a, pos, negc))
        X = np.concatenate([np.abs(ta - tp), np.abs(ta - tn)]); y = np.r_[np.zeros(k), np.ones(k)]
        out[f'DSM: motion probe tells the {neg} negative from the positive (%)'] = 100 * probe(X, y.astype(int))
    return out

@torch.no_grad()
def dclr_check(cfg, store, n):
    "Share of top-1 cross-video search results with the query's class, on a trained DCLR backbone's features."
    c = cfg.replace(**{'method.name': 'dclr'})
    net = load_backbone(store.pretrain(c), c)
    ds = build_dataset(c.replace(**{'data.frames': c.data.frames + 1}), 'train', mode='train'); k = min(n, len(ds))
    x = torch.stack([ds[i]['video'] for i in range(k)]); y = np.array([ds[i]['label'] for i in range(k)])
    views = dclr_views(x, ClipAugment(c.aug, c.data.size, seed=0))
    out = {}
    for name, key in (('frame differences', 'd'), ('static frames', 's'), ('RGB clips', 'v')):
        f = F.normalize(torch.cat([net(b) for b in views[key].split(64)]), dim=1)
        sim = f @ f.T; sim.fill_diagonal_(-2)
        out[f'DCLR: top-1 search on {name} has the query class (%)'] = 100 * float((y[sim.argmax(1).numpy()] == y).mean())
    return out

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--profile', default='mini')
    ap.add_argument('--runs', required=True, help='run store holding (or receiving) the seed-0 S2VC and DCLR runs')
    ap.add_argument('--data', default=None, help="data root (default: the profile's)")
    ap.add_argument('--n', type=int, default=400, help='training videos used by each check')
    ap.add_argument('--out', default=None, help='results folder that receives bench-mechanisms.md')
    a = ap.parse_args()
    torch.set_num_threads(2)
    cfg = get_config(a.profile, {'data.root': a.data} if a.data else {})
    ensure_benchmark(cfg.data.root, cfg.synth)
    store, t0, res = RunStore(a.runs, echo=False), time.time(), {}
    for f in (lambda: s2vc_check(cfg, store, a.n), lambda: dsm_check(cfg, a.n), lambda: dclr_check(cfg, store, a.n)):
        res.update(f())
    df = pd.DataFrame({'check': list(res), 'value': [round(v, 1) for v in res.values()]})
    print(df.to_string(index=False))
    if a.out:
        md = (f"# bench-mechanisms\n\nprofile: {a.profile} · runs: seed 0 · {a.n} training videos per check · commit: {git_commit()} · "
              f"wall time: {time.time() - t0:.0f} s · `python benchmarks/testbed_mechanisms.py --runs {a.runs} --out {a.out}`\n\n"
              + df.to_markdown(index=False) + '\n')
        print(atomic_write(Path(a.out)/'bench-mechanisms.md', md))

if __name__ == '__main__': main()
