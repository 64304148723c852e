"DSM's disturbances: TPS warp (identity, control points, per-clip/per-frame behaviour), flow scaling, temporal shift."
import numpy as np
import pytest, torch
from s2vc_repro.warp import (tps_control_points, tps_solve, tps_eval, tps_grid, pixel_grid, warp_clips, TPSWarp,
                             farneback_flow, flow_scale_warp, sample_phi, sample_shift, shift_indices)

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device')

def ramps(B, H, W, T=2):
    "Clips whose channels 0 and 1 hold the normalised x and y of each pixel centre: (B, 2, T, H, W)."
    g = pixel_grid(H, W).permute(2, 0, 1)  # (2, H, W)
    return g[None, :, None].expand(B, -1, T, -1, -1).contiguous()

@pytest.mark.parametrize('H,W', [(16, 16), (20, 32), (112, 112)])
def test_zero_offsets_are_identity(H, W):
    x = torch.rand(3, 3, 4, H, W)
    tw = TPSWarp(5, 0.1)
    src = tw.dst.expand(3, -1, -1).clone()
    assert torch.allclose(tw.apply(x, src), x, atol=1e-5)
    assert torch.allclose(TPSWarp(4, 0.0)(x), x, atol=1e-5)

def test_tps_interpolates_control_points_exactly():
    d = tps_control_points(5)
    s = d + 0.2 * (2 * torch.rand(6, 25, 2) - 1)
    assert torch.allclose(tps_eval(tps_solve(d, s), d, d), s, atol=1e-5)
    # an affine map is reproduced everywhere (no bending)
    A = torch.tensor([[1.1, 0.2], [-0.1, 0.9]]); b = torch.tensor([0.05, -0.1])
    p = 2 * torch.rand(100, 2) - 1
    assert torch.allclose(tps_eval(tps_solve(d, (d @ A.T + b)[None]), d, p)[0], p @ A.T + b, atol=1e-5)

def test_destination_pixel_samples_its_source_point():
    "Control points on pixel centres: the warped coordinate ramps show each source point at its destination pixel."
    H = W = 17
    g = pixel_grid(H, W)
    rows = cols = torch.arange(0, 17, 4)                      # 5 x 5 control points on pixel centres
    d = g[rows][:, cols].reshape(-1, 2)
    torch.manual_seed(0)
    s = (d + 0.15 * (2 * torch.rand(4, 25, 2) - 1)).clamp(g[0, 0, 0].item(), g[-1, -1, 0].item())  # stay inside the frame
    y = warp_clips(ramps(4, H, W), tps_grid(d, s, H, W))     # (4, 2, T, H, W)
    got = y[:, :, 0][:, :, rows][:, :, :, cols].permute(0, 2, 3, 1).reshape(4, 25, 2)
    assert torch.allclose(got, s, atol=1e-4)

def test_same_warp_on_frames_independent_across_batch():
    frame = torch.rand(1, 3, 1, 32, 32)
    x = frame.expand(6, -1, 8, -1, -1)
    y = TPSWarp(5, 0.1, seed=3)(x)
    assert torch.allclose(y, y[:, :, :1].expand_as(y), atol=1e-6)
    diffs = [(y[i] - y[j]).abs().mean().item() for i in range(6) for j in range(i + 1, 6)]
    assert min(diffs) > 1e-3
    # the warp keeps the global layout: the warped clip is closer to its source than to another image
    other = torch.rand_like(frame)
    assert (y[:1] - x[:1]).abs().mean() < (y[:1] - other).abs().mean()

def test_offsets_scale_free_and_bounded():
    tw = TPSWarp(5, 0.1, seed=0)
    src = tw.sample(1000)
    off = src - tw.dst
    assert off.abs().max() <= 0.2 + 1e-6 and off.abs().max() > 0.19   # +-1/10 of the frame = +-0.2 normalised units
    with pytest.raises(ValueError, match='tps_points'): TPSWarp(1, 0.1)
    with pytest.raises(ValueError, match='tps_offset'): TPSWarp(5, -0.1)

def test_seeded_warp_is_reproducible():
    x = torch.rand(2, 3, 4, 24, 24)
    assert torch.equal(TPSWarp(5, 0.1, seed=7)(x), TPSWarp(5, 0.1, seed=7)(x))

@CUDA
def test_tps_on_cuda_matches_cpu():
    x = torch.rand(2, 3, 4, 32, 32)
    tw = TPSWarp(5, 0.1)
    src = tw.sample(2)
    y = tw.apply(x, src)
    yc = tw.to('cuda').apply(x.cuda(), src.cuda())
    assert torch.allclose(yc.cpu(), y, atol=1e-4)

def translating(T=6, S=32, step=2, seed=0):
    "A smooth random texture translating `step` px right per frame: uint8 (T, S, S, 3)."
    import cv2
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.uniform(0, 255, (S, S + step * T + 8)).astype(np.float32), (0, 0), 2.0)
    big = (255 * (big - big.min()) / (big.max() - big.min())).astype(np.uint8)
    fr = [big[:, step * (T - t): step * (T - t) + S] for t in range(T)]  # content moves right
    return np.stack([np.repeat(f[..., None], 3, -1) for f in fr])

def test_farneback_gives_backward_flow():
    v = translating()
    fl = farneback_flow(v)
    assert fl.shape == (5, 32, 32, 2) and fl.dtype == np.float32
    mid = fl[:, 8:24, 8:24]
    assert abs(np.median(mid[..., 0]) + 2) < 0.3 and abs(np.median(mid[..., 1])) < 0.3   # I[t+1](p) = I[t](p - 2 px in x)
    with pytest.raises(ValueError, match='uint8'): farneback_flow(v.astype(np.float32))

def test_flow_scaling_eq3():
    v = torch.from_numpy(translating()).permute(3, 0, 1, 2)[None].float() / 255  # (1, 3, 6, 32, 32)
    flow = torch.zeros(1, 5, 32, 32, 2); flow[..., 0] = -2.                        # the exact backward flow
    inner = (slice(None),) * 3 + (slice(4, 28), slice(4, 28))
    y1 = flow_scale_warp(v, flow, torch.ones(1, 5))
    assert torch.allclose(y1[inner], v[inner], atol=1e-5)                          # phi = 1 rebuilds the clip
    y0 = flow_scale_warp(v, flow, torch.zeros(1, 5))
    assert torch.equal(y0[:, :, 0], v[:, :, 0]) and torch.allclose(y0[:, :, 1:], v[:, :, :-1], atol=1e-6)  # phi = 0 freezes
    y3 = flow_scale_warp(v, flow, torch.full((1, 5), 3.))                          # phi = 3: 6 px per step
    assert torch.allclose(y3[:, :, 1:, 4:28, 10:28], v[:, :, :-1, 4:28, 4:22], atol=1e-5)
    with pytest.raises(ValueError, match='flow must be'): flow_scale_warp(v, flow[:, :4], torch.ones(1, 4))

def test_phi_range():
    phi = sample_phi(64, 15, 5.0, torch.Generator().manual_seed(0))
    assert phi.shape == (64, 15) and phi.min() >= 0 and phi.max() <= 5 and phi.max() > 4.5
    with pytest.raises(ValueError, match='flow_scale'): sample_phi(2, 3, -1.)

def test_temporal_shift_loops():
    idx = np.arange(10, 26)
    assert shift_indices(idx, 20, 32).tolist() == [(i + 20) % 32 for i in idx]
    rng = np.random.default_rng(0)
    taus = {sample_shift(rng, (2, 20)) for _ in range(2000)}
    assert taus == set(range(2, 21))
    with pytest.raises(ValueError, match='a1 <= a2'): sample_shift(0, (3, 1))
