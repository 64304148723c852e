"Clip augmentation: per-clip parameters shared by all frames, batch independence, identity when off, devices."
from dataclasses import replace
import pytest, torch
from s2vc_repro.config import AugCfg, get_config
from s2vc_repro.augment import ClipAugment, TestTransform, normalize, denormalize, gaussian_blur, ten_crop

AUG = get_config('mini').aug
FULL = replace(AUG, crop_scale=(0.2, 1.0), hflip_p=0.5, jitter_p=1.0, gray_p=0.2, blur_p=0.5)
OFF = AugCfg(crop_scale=(1.0, 1.0), hflip_p=0., jitter_p=0., gray_p=0., blur_p=0.)
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device')

def moving_square(B=4, T=8, S=40):
    "A textured static background with a bright square moving left to right in rows 4..11; (B, 3, T, S, S) uint8."
    g = torch.Generator().manual_seed(0)
    bg = (torch.rand(B, 3, 1, S, S, generator=g) * 200).to(torch.uint8).expand(-1, -1, T, -1, -1).clone()
    for t in range(T): bg[:, :, t, 4:12, 2 + 3 * t:10 + 3 * t] = 255
    return bg

def test_shape_dtype_range_uint8_and_float():
    x = moving_square()
    for inp in (x, x.float() / 255):
        y = ClipAugment(FULL, 32, normalize=False, seed=0)(inp)
        assert y.shape == (4, 3, 8, 32, 32) and y.dtype == torch.float32
        assert y.min() >= 0 and y.max() <= 1
    z = ClipAugment(FULL, 32, seed=0)(x)
    assert torch.allclose(denormalize(z), ClipAugment(FULL, 32, normalize=False, seed=0)(x), atol=1e-5)

def test_identical_frames_stay_identical():
    x = torch.rand(16, 3, 1, 40, 40).expand(-1, -1, 8, -1, -1)
    y = ClipAugment(FULL, 32, seed=1)(x)
    assert (y - y[:, :, :1]).abs().max() < 1e-5

def test_static_region_stays_static_with_moving_object():
    "Rows far below the object's path never change over time after crop, flip and jitter (blur off)."
    x = moving_square(B=16, S=40)
    aug = ClipAugment(replace(FULL, blur_p=0., crop_scale=(1.0, 1.0)), 40, normalize=False, seed=2)
    y = aug(x)
    assert (y[..., 16:, :].std(2)).max() < 1e-5        # background rows: constant in time
    assert (y[..., 4:12, :].std(2)).max() > 0.05       # the object's rows do move
    aug = ClipAugment(replace(FULL, blur_p=0.), 32, normalize=False, seed=3)  # with random crops too
    p = aug.sample(16, 40, 40)
    y = aug.apply(x, p)
    # output rows whose source rows are all >= 14 (object rows 4..11 and a 2-pixel margin for bilinear)
    for i in range(16):
        y0, h = p['boxes'][i, 1].item(), p['boxes'][i, 3].item()
        rows = [r for r in range(32) if y0 + (r + 0.5) * h / 32 - 0.5 >= 14]
        if rows: assert y[i][..., rows, :].std(1).max() < 1e-5

def test_clips_get_different_parameters():
    x = torch.rand(1, 3, 4, 40, 40).expand(12, -1, -1, -1, -1)
    for a in (FULL, replace(OFF, crop_scale=(0.2, 1.0)), replace(OFF, jitter_p=1.0)):
        y = ClipAugment(a, 32, seed=4)(x)
        d = (y[:, None] - y[None]).flatten(2).abs().amax(-1)
        assert (d + torch.eye(12) > 1e-4).all(), a
    p = ClipAugment(FULL, 32, seed=4).sample(256, 40, 40)
    assert 0.3 < p['flip'].float().mean() < 0.7 and 0.1 < p['gray'].float().mean() < 0.3
    assert len(set(map(tuple, p['boxes'].tolist()))) > 200

@pytest.mark.parametrize('field', ['hflip_p', 'jitter_p', 'gray_p', 'blur_p'])
def test_probability_zero_is_identity(field):
    x = torch.rand(6, 3, 4, 32, 32)
    a = replace(OFF, **{field: 0.0})
    assert torch.allclose(ClipAugment(a, 32, normalize=False, seed=5)(x), x, atol=1e-5)
    b = replace(OFF, **{field: 1.0}, blur_sigma=(1.0, 2.0))  # and probability 1 changes every clip
    y = ClipAugment(b, 32, normalize=False, seed=5)(x)
    assert ((y - x).flatten(1).abs().amax(1) > 1e-3).all()

def test_strong_off_gives_crop_and_flip_only():
    x = torch.rand(4, 3, 4, 40, 40)
    weak = ClipAugment(FULL, 32, normalize=False, strong=False, seed=6)
    full = ClipAugment(replace(FULL, jitter_p=0., gray_p=0., blur_p=0.), 32, normalize=False, seed=6)
    assert set(weak.sample(4, 40, 40)) == {'boxes', 'flip'}
    p = weak.sample(4, 40, 40, torch.Generator().manual_seed(0))
    q = full.sample(4, 40, 40, torch.Generator().manual_seed(0))
    assert torch.equal(p['boxes'], q['boxes']) and torch.equal(p['flip'], q['flip'])
    assert torch.allclose(weak.apply(x, p), full.apply(x, q), atol=1e-6)

def test_determinism():
    x = moving_square()
    a = ClipAugment(FULL, 32, seed=7)(x); b = ClipAugment(FULL, 32, seed=7)(x)
    assert torch.equal(a, b)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    aug = ClipAugment(FULL, 32)
    assert torch.equal(aug(x, g1), aug(x, g2))
    assert not torch.equal(aug(x, g1), aug(x, torch.Generator().manual_seed(2)))
    torch.manual_seed(3); c = aug(x); torch.manual_seed(3); d = aug(x)  # global RNG without a seed
    assert torch.equal(c, d)

def test_jitter_fixed_and_random_order():
    x = torch.rand(8, 3, 2, 16, 16)
    for ro in (True, False):
        y = ClipAugment(replace(OFF, jitter_p=1.0), 16, normalize=False, random_order=ro, seed=0)(x)
        assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    p = ClipAugment(FULL, 16, random_order=False).sample(5, 16, 16)
    assert (p['order'] == torch.arange(4)).all()

def test_bad_input_and_config_errors():
    with pytest.raises(ValueError, match=r'\(B, C, T, H, W\)'): ClipAugment(AUG, 32)(torch.rand(3, 4, 40, 40))
    with pytest.raises(ValueError, match='C == 3'): ClipAugment(AUG, 32)(torch.rand(2, 1, 4, 40, 40))
    with pytest.raises(ValueError, match='hflip_p'): ClipAugment(replace(AUG, hflip_p=1.5), 32)
    with pytest.raises(ValueError, match='crop scale'): ClipAugment(replace(AUG, crop_scale=(0.0, 1.0)), 32)(torch.rand(1, 3, 2, 8, 8))
    with pytest.raises(TypeError, match='uint8 or floating'): ClipAugment(AUG, 32)(torch.zeros(1, 3, 2, 40, 40, dtype=torch.int32))

def test_blur_is_per_clip_and_preserves_constant():
    x = torch.rand(2, 3, 3, 24, 24)
    y = gaussian_blur(x, torch.tensor([0.1, 2.0]), 5)
    assert (y[0] - x[0]).abs().max() < 1e-3 and (y[1] - x[1]).abs().max() > 0.05
    c = torch.full((2, 3, 2, 8, 8), 0.3)
    assert torch.allclose(gaussian_blur(c, torch.tensor([1., 2.])), c, atol=1e-6)

def test_test_transform():
    x = torch.randint(0, 256, (2, 3, 4, 40, 48), dtype=torch.uint8)
    y = TestTransform(32)(x)
    assert y.shape == (2, 3, 4, 32, 32)
    assert torch.allclose(y, normalize(x[..., 4:36, 8:40].float() / 255))
    assert torch.equal(TestTransform(32)(x), TestTransform(32)(x))
    t = TestTransform(32, ten_crop=True)(x)
    assert t.shape == (2, 10, 3, 4, 32, 32)
    assert torch.equal(t[:, 5:], t[:, :5].flip(-1))
    assert torch.equal(ten_crop(x.float(), 32)[:, 4], x[..., 4:36, 8:40].float())

@CUDA
def test_cuda_matches_cpu():
    x = moving_square(B=8)
    cpu = ClipAugment(FULL, 32, seed=9)(x)
    gpu = ClipAugment(FULL, 32, seed=9)(x.cuda())
    assert gpu.device.type == 'cuda' and gpu.shape == cpu.shape
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-3)
    t = TestTransform(32, ten_crop=True)(x.cuda())
    assert t.device.type == 'cuda' and torch.allclose(t.cpu(), TestTransform(32, ten_crop=True)(x), atol=1e-5)

# --- the augmentation as it was before its ops were rewritten for speed (grouped-convolution blur, unfused colour ops):
# a frozen reference that the current ops must reproduce in distribution (and, given the same draw, clip by clip)
import torch.nn.functional as F
from s2vc_repro.augment import resized_crop, to_float
from scipy import stats

def _ref_gray(x):
    r, g, b = x.unbind(1)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(1)

def _ref_brightness(x, f): return (x * f.view(-1, 1, 1, 1, 1)).clamp_(0, 1)
def _ref_contrast(x, f):
    f = f.view(-1, 1, 1, 1, 1); m = _ref_gray(x).mean((1, 2, 3, 4), keepdim=True)
    return (f * x + (1 - f) * m).clamp_(0, 1)
def _ref_saturation(x, f):
    f = f.view(-1, 1, 1, 1, 1)
    return (f * x + (1 - f) * _ref_gray(x)).clamp_(0, 1)
def _ref_hue(x, f):
    r, g, b = x.split(1, 1)
    maxc = x.amax(1, keepdim=True); d = maxc - x.amin(1, keepdim=True); dc = d.clamp(min=1e-12)
    h = torch.where(r == maxc, (g - b) / dc, torch.where(g == maxc, (b - r) / dc + 2, (r - g) / dc + 4))
    h = h / 6 + f.view(-1, 1, 1, 1, 1)
    k = torch.tensor([5., 3., 1.]).view(1, 3, 1, 1, 1) + 6 * h
    k = k - 6 * torch.floor(k / 6)
    return (maxc - d * torch.minimum(k, 4 - k).clamp_(0, 1)).clamp_(0, 1)
def _ref_blur(x, sigma):
    B, C, T, H, W = x.shape
    k = max(3, int(0.1 * min(H, W)) // 2 * 2 + 1); p = k // 2
    r = torch.arange(k, dtype=x.dtype) - p
    ker = torch.exp(-0.5 * (r / sigma.view(B, 1).clamp(min=1e-6)) ** 2)
    ker = (ker / ker.sum(1, keepdim=True)).repeat_interleave(C * T, 0)
    y = x.reshape(1, B * C * T, H, W)
    y = F.conv2d(F.pad(y, (p, p, 0, 0), mode='reflect'), ker.view(-1, 1, 1, k), groups=B * C * T)
    y = F.conv2d(F.pad(y, (0, 0, p, p), mode='reflect'), ker.view(-1, 1, k, 1), groups=B * C * T)
    return y.view(B, C, T, H, W)

def _ref_apply(aug, x, p):
    "The former `ClipAugment.apply`, op for op."
    x = resized_crop(to_float(x), p['boxes'], aug.size, p['flip'])
    ops = (_ref_brightness, _ref_contrast, _ref_saturation, _ref_hue)
    for pos in range(4):
        for k, op in enumerate(ops):
            if aug.aug.jitter[k] == 0: continue
            idx = (p['jitter'] & (p['order'][:, pos] == k)).nonzero()[:, 0]
            if len(idx): x[idx] = op(x[idx], p['factors'][idx, k])
    idx = p['gray'].nonzero()[:, 0]
    if len(idx): x[idx] = _ref_gray(x[idx]).expand(-1, 3, -1, -1, -1)
    idx = p['blur'].nonzero()[:, 0]
    if len(idx): x[idx] = _ref_blur(x[idx], p['sigma'][idx])
    return normalize(x, aug.aug.mean, aug.aug.std) if aug.do_norm else x

@pytest.mark.parametrize('cfg,size,insize', [(AUG, 32, 32), (FULL, 32, 40), (replace(FULL, blur_p=1.0), 112, 128)])
def test_views_match_the_former_augmentation(cfg, size, insize):
    "Same draw, same views: the rewritten ops give the former views clip by clip, so their statistics agree."
    n = 64 if size == 112 else 256
    g = torch.Generator().manual_seed(11)
    x = torch.randint(0, 256, (n, 3, 4, insize, insize), generator=g, dtype=torch.uint8)
    x[: n // 2] = (x[: n // 2].float() * torch.rand(n // 2, 3, 1, 1, 1, generator=g)).to(torch.uint8)  # coloured clips, not only grey noise
    aug = ClipAugment(cfg, size, seed=12)
    p = aug.sample(n, insize, insize)
    new, old = aug.apply(x, p), _ref_apply(aug, x, p)
    assert (new - old).abs().max() < 1e-4
    for y in (new, old): assert torch.isfinite(y).all()
    m_new, m_old = new.mean((0, 2, 3, 4)), old.mean((0, 2, 3, 4))
    s_new, s_old = new.std((0, 2, 3, 4)), old.std((0, 2, 3, 4))
    assert torch.allclose(m_new, m_old, atol=1e-4) and torch.allclose(s_new, s_old, atol=1e-4), (m_new, m_old, s_new, s_old)
    # under independent draws (fixed seeds) the per-clip channel means and stds of the two pipelines have one law (KS test)
    a, b = aug(x, torch.Generator().manual_seed(5)), _ref_apply(aug, x, aug.sample(n, insize, insize, torch.Generator().manual_seed(6)))
    for c in range(3):
        assert stats.ks_2samp(a[:, c].mean((1, 2, 3)).numpy(), b[:, c].mean((1, 2, 3)).numpy()).pvalue > 1e-3
        assert stats.ks_2samp(a[:, c].std((1, 2, 3)).numpy(), b[:, c].std((1, 2, 3)).numpy()).pvalue > 1e-3

def test_parameter_distributions():
    "Each op's parameters follow the configured law (uniform ranges, probabilities, a uniformly random order)."
    n, aug = 20000, ClipAugment(FULL, 32, seed=13)
    p = aug.sample(n, 40, 40)
    (b, c, s, h), a = FULL.jitter, FULL
    for k, (lo, hi) in enumerate([(1 - b, 1 + b), (1 - c, 1 + c), (1 - s, 1 + s), (-h, h)]):
        assert stats.kstest(p['factors'][:, k].numpy(), stats.uniform(lo, hi - lo).cdf).pvalue > 1e-3
    assert stats.kstest(p['sigma'].numpy(), stats.uniform(a.blur_sigma[0], a.blur_sigma[1] - a.blur_sigma[0]).cdf).pvalue > 1e-3
    for key, prob in (('flip', a.hflip_p), ('jitter', a.jitter_p), ('gray', a.gray_p), ('blur', a.blur_p)):
        assert stats.binomtest(int(p[key].sum()), n, prob).pvalue > 1e-3, key
    first = torch.bincount(p['order'][:, 0], minlength=4).numpy()
    assert stats.chisquare(first).pvalue > 1e-3
    area = (p['boxes'][:, 2] * p['boxes'][:, 3]).float() / (40 * 40)
    assert area.min() >= a.crop_scale[0] - 0.05 and area.max() <= 1.0
