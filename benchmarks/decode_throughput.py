"""Decode throughput of `VideoDataset` at the mini size: random 16-frame clips of 32-frame 64x64 mp4 files, resized to 40.

Usage: python benchmarks/decode_throughput.py [--videos 32] [--clips 400] [--mode train] [--workers 0]
Prints clips/s (and frames/s) for one process (or a DataLoader with --workers).
"""
import argparse, tempfile, time
from pathlib import Path
import numpy as np
import torch
from torch.utils.data import DataLoader
from s2vc_repro.data.video import write_video, moving_square
from s2vc_repro.data.datasets import VideoRecord, VideoDataset

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--videos', type=int, default=32, help='distinct mp4 files')
    ap.add_argument('--frames', type=int, default=32, help='frames per video file')
    ap.add_argument('--side', type=int, default=64, help='frame side of the files')
    ap.add_argument('--T', type=int, default=16, help='frames per clip')
    ap.add_argument('--resize', type=int, default=40, help='decode-time resize (short side)')
    ap.add_argument('--clips', type=int, default=400, help='clips to decode')
    ap.add_argument('--mode', default='train', choices=['train', 'pair', 'uniform', 'windows'])
    ap.add_argument('--workers', type=int, default=0, help='DataLoader workers (0: the calling process)')
    a = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        recs = [VideoRecord(str(write_video(Path(d)/f'v{k}.mp4', np.roll(moving_square(a.frames, a.side, a.side, 12), k, axis=2))), 0)
                for k in range(a.videos)]
        ds = VideoDataset(recs, a.mode, frames=a.T, size=a.resize)
        idx = [i % len(ds) for i in range(a.clips)]
        ds[0]  # warm-up
        t = time.perf_counter()
        if a.workers:
            n = 0
            for b in DataLoader(torch.utils.data.Subset(ds, idx), batch_size=8, num_workers=a.workers): n += b['video'].shape[0]
        else:
            for i in idx: ds[i]
        dt = time.perf_counter() - t
    per_item = {'train': 1, 'pair': 2, 'uniform': ds.n_clips}.get(a.mode, 1)
    cps = a.clips * per_item / dt
    print(f'{cps:.1f} clips/s ({cps * a.T:.0f} frames/s): {a.clips} items, mode={a.mode}, {a.T}x{a.resize}x{a.resize} clips '
          f'from {a.frames}-frame {a.side}x{a.side} mp4, workers={a.workers}, {dt:.2f} s')

if __name__ == '__main__':
    main()
