"""Cost of DSM's disturbances and their share of a training step.

Times (CPU time of the process, one thread, so that other jobs on a shared machine do not distort the
shares; wall time on CUDA), per clip, on the loader side (CPU, uint8 numpy): Farneback flow of one clip, a `DSMDataset` item
(decode + shifted clip + flow) against a plain `VideoDataset` item; and on the batch side (torch, the
training device): the TPS warp, the flow-scaling warp and the clip augmentation. Then one full training
step of 'dsm' / 'dsm-triplet' / 'moco' (forward, backward, optimiser) on a batch, to give the share of
the step each part takes. Sizes: the mini profile (16 x 40 x 40 decoded, 32 crop) and 16 x 112 x 112.

    nice -n 10 python benchmarks/dsm_augment.py [--batch 32 --iters 5 --data data/mini --sizes 40:32,112:112]
"""
import argparse, os, time
import numpy as np
import torch
from s2vc_repro.config import get_config
from s2vc_repro.augment import ClipAugment, to_float
from s2vc_repro.warp import TPSWarp, farneback_flow, flow_scale_warp, sample_phi
from s2vc_repro.methods.base import build_method
from s2vc_repro.methods.dsm import DSMDataset, DSMViews
from s2vc_repro.data.datasets import build_dataset, load_split

CLOCK = time.process_time  # CPU seconds of this process: robust to other jobs on a shared machine (perf_counter on CUDA)

def timeit(fn, iters, warmup=1, sync=lambda: None):
    "Median seconds of `fn()`."
    for _ in range(warmup): fn()
    ts = []
    for _ in range(iters):
        sync(); t = CLOCK(); fn(); sync(); ts.append(CLOCK() - t)
    return float(np.median(ts))

def real_clip(root, T, S):
    "A real benchmark clip (uint8 (T, S, S, 3)) from the mini data, resized with OpenCV to S."
    import cv2
    from s2vc_repro.data.video import read_frames
    recs, _ = load_split(root, 'synth-ucf', 'train')
    x = read_frames(recs[0].path, np.arange(T)).numpy()
    return np.stack([cv2.resize(f, (S, S), interpolation=cv2.INTER_LINEAR) for f in x])

def step_time(cfg, B, S, iters, device):
    "Seconds of one optimiser step of `cfg`'s method on a random batch of decoded side S (plus the batch-side views' share)."
    torch.manual_seed(0)
    m = build_method(cfg).to(device); aug = ClipAugment(cfg.aug, cfg.data.size).to(device)
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    T = cfg.data.frames
    g = torch.Generator().manual_seed(0)
    batch = {'video': torch.randint(0, 256, (B, 3, T, S, S), generator=g, dtype=torch.uint8),
             'negative': torch.randint(0, 256, (B, 3, T, S, S), generator=g, dtype=torch.uint8),
             'flow': torch.randn(B, T - 1, S, S, 2, generator=g).half(),
             'label': torch.zeros(B, dtype=torch.long), 'index': torch.arange(B)}
    batch = {k: v.to(device) for k, v in batch.items()}
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    def step():
        out = m.training_step(batch, aug)
        opt.zero_grad(); out['loss'].backward(); opt.step(); m.after_step()
    t_step = timeit(step, iters, sync=sync)
    views = 0.0
    if isinstance(m, DSMViews):
        def mk():
            with torch.no_grad(): m.anchor_positive(batch, aug); m.negative_view(batch, aug)
        views = timeit(mk, iters, sync=sync)
    return t_step, views

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--frames', type=int, default=16)
    ap.add_argument('--iters', type=int, default=5)
    ap.add_argument('--data', default='data/mini', help='data root holding synth-ucf (the mini benchmark)')
    ap.add_argument('--sizes', default='40:32,112:112', help='decoded:crop sides to time')
    ap.add_argument('--no-step', action='store_true', help='skip the training-step timing')
    ap.add_argument('--threads', type=int, default=1, help='torch/OpenCV CPU threads (1: CPU time = work, comparable across parts)')
    a = ap.parse_args(argv)
    global CLOCK
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if device.type == 'cuda': CLOCK = time.perf_counter
    if a.threads:
        import cv2
        torch.set_num_threads(a.threads); cv2.setNumThreads(a.threads)
    B, T = a.batch, a.frames
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, load average {os.getloadavg()[0]:.1f}; "
          f"times are {'CPU seconds of this process' if CLOCK is time.process_time else 'wall seconds'}")

    # loader side: one item, on real mini data (mini sizes)
    cfg = get_config('mini', {'data.root': a.data})
    base = build_dataset(cfg, 'train', mode='pair')
    recs, _ = load_split(a.data, 'synth-ucf', 'train')
    n_items = 2 * a.iters * 4
    def per_item(ds): return timeit(lambda: [ds[i] for i in range(n_items)], 1) / n_items
    t_pair = per_item(base)
    print(f"\nloader, one item at {cfg.data.resize}x{cfg.data.resize} (T={cfg.data.frames}):")
    print(f"  VideoDataset 'pair' (MoCo)            {1e3 * t_pair:7.2f} ms")
    for neg in ('none', 'tshift', 'scaling', 'mdisturb'):
        ds = DSMDataset(recs, cfg.data.frames, cfg.data.stride, negative=neg, shift=cfg.dsm.shift, size=cfg.data.resize, probe=False)
        t = per_item(ds)
        print(f"  DSMDataset negative={neg:9s}         {1e3 * t:7.2f} ms")
    t_loader_dsm = t

    for spec in a.sizes.split(','):
        S, crop = map(int, spec.split(':'))
        clip = real_clip(a.data, T, S)
        t_fb = timeit(lambda: farneback_flow(clip), a.iters)
        x = torch.from_numpy(clip).permute(3, 0, 1, 2)[None].expand(B, -1, -1, -1, -1).contiguous().to(device)
        flow = torch.from_numpy(farneback_flow(clip))[None].expand(B, -1, -1, -1, -1).half().to(device)
        sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
        aug = ClipAugment(cfg.aug, crop).to(device); tps = TPSWarp(cfg.dsm.tps_points, cfg.dsm.tps_offset).to(device)
        xa = aug(x)
        t_aug = timeit(lambda: aug(x), a.iters, sync=sync) / B
        t_tps = timeit(lambda: tps(xa), a.iters, sync=sync) / B
        t_fs = timeit(lambda: flow_scale_warp(to_float(x), flow, sample_phi(B, T - 1, cfg.dsm.flow_scale)), a.iters, sync=sync) / B
        print(f"\nper clip, {T}x{S}x{S} decoded -> {crop} crop (batch {B}):")
        print(f"  loader  Farneback flow (T-1 pairs)     {1e3 * t_fb:7.2f} ms")
        print(f"  batch   ClipAugment (one view)         {1e3 * t_aug:7.3f} ms")
        print(f"  batch   TPS warp (positive)            {1e3 * t_tps:7.3f} ms")
        print(f"  batch   flow scaling warp (negative)   {1e3 * t_fs:7.3f} ms")
        print("  batch   temporal shift                   (an extra decode of T frames in the loader; no batch cost)")

    if a.no_step: return
    print(f"\ntraining step, mini config (cnn4, batch {B}, {T}x40x40 -> 32):")
    res = {}
    for name in ('moco', 'dsm', 'dsm-triplet'):
        c = get_config('mini', {'method.name': name})
        res[name] = step_time(c, B, c.data.resize, a.iters, device)
        ts, tv = res[name]
        print(f"  {name:12s} step {1e3 * ts:8.1f} ms" + (f"   batch-side views (aug x3 + TPS + flow scaling) {1e3 * tv:6.1f} ms = {100 * tv / ts:4.1f}% of the step" if tv else ''))
    w = max(cfg.data.workers, 1)
    for name in ('dsm', 'dsm-triplet'):
        ts = res[name][0]
        load = B * t_loader_dsm / w
        print(f"  {name:12s} loader work per batch (mdisturb, {w} worker) {1e3 * load:7.1f} ms = {100 * load / ts:4.1f}% of the step "
              f"(hidden behind the step when < 100%: the loader runs in parallel)")

if __name__ == '__main__': main()
