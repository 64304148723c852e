"""How much scene survives in S2VC's motion-preserved key clips: background-family accuracy of a linear probe.

    python benchmarks/s2vc_scene_cue.py --flow runs/flow-<hash>/flow.pt      # mini benchmark, a trained flow

S2VC only helps if the key clip no longer tells the scene apart. On the synthetic benchmark the scene is the
background texture family (4 families, chance 25%). Key clips of training videos are made as S2VC makes them
(crop only, [0, 1]) and turned into motion-preserved clips (eq. 3-5, for several alpha) and TFD clips; a
logistic-regression probe on the amplitude spectrum of each clip's temporal mean (its static content: a
translation-invariant texture descriptor) is trained
on half the videos and tested on the other half. The printed accuracy is how well the scene can still be read
from the key clip: near 25% means the scene is gone, near 100% means it is intact.
"""
import argparse
from pathlib import Path
import numpy as np, pandas as pd, torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from s2vc_repro.config import get_config
from s2vc_repro.augment import ClipAugment
from s2vc_repro.data.datasets import build_dataset, read_meta
from s2vc_repro.flows import load_flow
from s2vc_repro.methods.s2vc import suppress, tfd

def static_features(x: torch.Tensor) -> np.ndarray:
    "Texture descriptor of the static content of clips (B, C, T, H, W): log amplitude spectrum of the temporal mean, per channel."
    m = x.float().mean(2)  # (B, C, H, W): what does not move
    spec = torch.fft.rfft2(m - m.mean((2, 3), keepdim=True)).abs()  # translation-invariant: textures differ in structure
    return torch.cat([torch.log1p(spec).flatten(1), m.mean((2, 3))], 1).numpy()

def probe(X: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    "Held-out accuracy of a logistic-regression probe trained on a random half."
    idx = np.random.default_rng(seed).permutation(len(y)); h = len(y) // 2
    clf = LogisticRegression(max_iter=2000).fit(X[idx[:h]], y[idx[:h]])
    return float((clf.predict(X[idx[h:]]) == y[idx[h:]]).mean())

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--profile', default='mini')
    ap.add_argument('--flow', required=True, help='flow.pt of a trained flow of the profile')
    ap.add_argument('--root', default=None, help="data root (default: the profile's data.root)")
    ap.add_argument('--n', type=int, default=400, help='training videos used')
    ap.add_argument('--alphas', type=float, nargs='+', default=[0.25, 0.5, 1.0])
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg = get_config(a.profile, {'method.name': 's2vc', **({'data.root': a.root} if a.root else {})})
    ds = build_dataset(cfg, 'train', mode='train')
    meta = read_meta(cfg.data.root, cfg.data.dataset).set_index('path')
    n = min(a.n, len(ds))
    clips = torch.stack([ds[i]['video'] for i in range(n)])
    rel = lambda p: '/'.join(Path(p).parts[-2:])  # meta.csv paths are <ClassName>/<file>
    fam = np.array([meta.loc[rel(ds.records[i].path), 'family'] for i in range(n)])
    key = ClipAugment(cfg.aug, cfg.data.size, normalize=False, strong=False, seed=0)(clips)
    flow = load_flow(a.flow, cfg.flow)
    rows = [('key clip (crop only)', probe(static_features(key), fam), 1.0)]
    for al in a.alphas:
        parts = [suppress(flow, c, al, 'zero', cfg.flow.size) for c in key.split(50)]
        out, kept = torch.cat([o for o, _ in parts]), torch.cat([k for _, k in parts])
        rows.append((f'S2VC alpha {al}', probe(static_features(out), fam), float(kept.mean())))
    # the residual of eq. 5 lives at the flow's resolution: what the pooling removes (fine texture) is never suppressed.
    # The same probe on clips seen at the flow's resolution only (pooled, then upsampled back) separates the two:
    S, H = cfg.flow.size, key.shape[-1]
    low = lambda x: F.interpolate(F.adaptive_avg_pool3d(x, (x.shape[2], S, S)), size=(x.shape[2], H, H), mode='nearest')
    lk = low(key)
    rows.append((f'key clip at flow resolution ({S}px)', probe(static_features(lk), fam), 1.0))
    parts = [suppress(flow, c, 0.5, 'zero', S) for c in lk.split(50)]
    rows.append(('S2VC alpha 0.5 at flow resolution', probe(static_features(torch.cat([o for o, _ in parts])), fam),
                 float(torch.cat([k for _, k in parts]).mean())))
    t, kept = tfd(key, cfg.s2vc.tfd_keep, cfg.aug.mean)
    rows.append((f'TFD keep {cfg.s2vc.tfd_keep}', probe(static_features(t), fam), float(kept.mean())))
    print(pd.DataFrame(rows, columns=['key clip', 'family acc (chance 0.25)', 'kept share']).to_string(index=False))

if __name__ == '__main__': main()
