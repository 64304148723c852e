"Tests of DCLR (s2vc_repro.methods.dclr) and the static-positive experiment (s2vc_repro.methods.static_positive)."
import math
import pytest
import torch
import torch.nn.functional as F
from s2vc_repro.config import get_config, AugCfg
from s2vc_repro.augment import ClipAugment
from s2vc_repro.methods.base import build_method
from s2vc_repro.augment import frame_difference
from s2vc_repro.methods.dclr import (DCLR, SearchQueue, dclr_views, search_weights, pair_nce, corrected_nce,
                                     activation_map, activation_loss, weighted_pool)

B, H = 4, 18


def _cfg(**over):
    return get_config('smoke', {'method.name': 'dclr', 'data.frames': 4, **{f'dclr.{k}' if '.' not in k else k: v for k, v in over.items()}})


def _batch(cfg, seed=0, b=B):
    g = torch.Generator().manual_seed(seed)
    return {'video': torch.randint(0, 256, (b, 2, 3, cfg.data.frames + 1, H, H), dtype=torch.uint8, generator=g),
            'index': torch.arange(seed * b, seed * b + b), 'label': torch.zeros(b, dtype=torch.long)}


def _identity_aug(size):
    "An augmentation that only converts to [0, 1]: full-frame crop, no flip, no colour, no normalisation."
    return ClipAugment(AugCfg(crop_scale=(1.0, 1.0), hflip_p=0.0), size, normalize=False, strong=False, ratio=(1.0, 1.0))


# --- inputs (eq. 3-4) ---------------------------------------------------------------------------------
def test_frame_difference_and_static_frame_on_known_clip():
    T = 6
    t = torch.arange(T + 1, dtype=torch.float32)
    clip = (t ** 2 * 5).view(1, 1, T + 1, 1, 1).expand(2, 3, T + 1, H, H).to(torch.uint8).contiguous()  # frame t = 5 t^2
    vw = dclr_views(clip, _identity_aug(H), static_idx=torch.tensor([0, 3]))
    x = clip.float() / 255
    torch.testing.assert_close(vw['v'], x[:, :, :T])                        # v: the first T frames
    torch.testing.assert_close(vw['d'], x[:, :, 1:] - x[:, :, :-1])          # eq. 4: T true differences
    want = (5 * (2 * torch.arange(T) + 1)).float() / 255                    # 5((t+1)^2 - t^2)
    torch.testing.assert_close(vw['d'][0, 0, :, 0, 0], want)
    assert vw['d'].shape[2] == T and not torch.allclose(vw['d'][:, :, 0], x[:, :, 0] - x[:, :, -1])  # no wrap-around
    torch.testing.assert_close(vw['s'][0], x[0, :, :1].expand(-1, T, -1, -1))  # eq. 3: frame 0 repeated
    torch.testing.assert_close(vw['s'][1], x[1, :, 3:4].expand(-1, T, -1, -1))  # frame 3 repeated
    with pytest.raises(ValueError, match='T\\+1 >= 2'): frame_difference(clip[:, :, :1])
    wrapped = dclr_views(clip, _identity_aug(H), wrap=True)['d']  # the public code's variant, kept as an option
    torch.testing.assert_close(wrapped[:, :, 0], x[:, :, 0] - x[:, :, T - 1])


def test_shared_crop_and_colour_only_on_v_and_s():
    cfg = get_config('smoke')
    clip = torch.randint(0, 256, (B, 3, cfg.data.frames + 1, H, H), dtype=torch.uint8)
    a = ClipAugment(AugCfg(jitter_p=1.0, gray_p=0.0, blur_p=0.0), cfg.data.size, seed=3)
    vw = dclr_views(clip, a)
    ref = ClipAugment(AugCfg(jitter_p=1.0, gray_p=0.0, blur_p=0.0), cfg.data.size, seed=3)
    p = ref.sample(B, H, H)
    torch.testing.assert_close(vw['v'], ref.apply(clip[:, :, :-1], p))        # colour-jittered v
    plain = ref.apply(clip, {'boxes': p['boxes'], 'flip': p['flip']})        # same crop, no colour
    torch.testing.assert_close(vw['d'], plain[:, :, 1:] - plain[:, :, :-1])
    assert not torch.allclose(vw['v'], plain[:, :, :-1])


# --- search weights and queue -------------------------------------------------------------------------
def test_prior_weights_sum_to_one_and_follow_similarity():
    torch.manual_seed(0)
    sims = torch.rand(16, 5).sort(1, descending=True).values
    p = search_weights(sims, 'prior')
    torch.testing.assert_close(p.sum(1), torch.ones(16))
    assert (p[:, :-1] >= p[:, 1:]).all()
    torch.testing.assert_close(p, sims / sims.sum(1, keepdim=True))
    torch.testing.assert_close(search_weights(sims, 'uniform'), torch.full_like(sims, 0.2))
    neg = search_weights(torch.tensor([[0.5, -0.2]]))  # negative similarities are clipped, weights stay a distribution
    assert (neg >= 0).all() and math.isclose(float(neg.sum()), 1.0, rel_tol=1e-6)


def test_queue_handles_any_batch_size():
    q = SearchQueue(4, {'key': 3, 'val': 2})
    keys = F.normalize(torch.randn(8, 3), dim=1)
    q.push(torch.arange(3), key=keys[:3], val=torch.randn(3, 2))
    assert len(q) == 3 and int(q.ptr) == 3
    q.push(torch.arange(3, 8), key=keys[3:], val=torch.randn(5, 2))
    assert q.index.tolist() == [4, 5, 6, 7] and int(q.ptr) == 0
    torch.testing.assert_close(q.get('key'), keys[4:])
    q.push(torch.tensor([8]), key=keys[:1], val=torch.zeros(1, 2))
    assert q.index.tolist() == [8, 5, 6, 7] and int(q.ptr) == 1
    sims, pos = q.topk('key', keys[4:6], 2, exclude=torch.tensor([4, 5]))
    assert not (q.index[pos] == torch.tensor([[4], [5]])).any()
    assert q.topk('key', keys[:1], 5) is None  # more than the queue holds
    q.clear(); assert len(q) == 0
    with pytest.raises(ValueError, match='exactly the fields'): q.push(torch.arange(2), key=keys[:2])


# --- activation maps ----------------------------------------------------------------------------------
def test_act_loss_sends_no_gradient_into_s_and_d_streams():
    cfg = _cfg(losses=['vv'], search='none', act_loss=True)
    m = build_method(cfg)
    outs, feats = [], m.backbone.features
    def spy(x):
        y = feats(x); y.retain_grad(); outs.append(y); return y
    m.backbone.features = spy
    out = m.training_step(_batch(cfg), ClipAugment(cfg.aug, cfg.data.size))
    assert len(outs) == 3 and float(out['ac']) > 0  # v, s, d
    out['loss'].backward()
    assert outs[0].grad is not None and outs[0].grad.abs().sum() > 0
    assert outs[1].grad is None and outs[2].grad is None
    # and at function level
    fv, fs, fd = (torch.randn(2, 4, 2, 3, 3, requires_grad=True) for _ in range(3))
    g = torch.autograd.grad(activation_loss(activation_map(fv), activation_map(fs), activation_map(fd)), [fv, fs, fd], allow_unused=True)
    assert g[0] is not None and g[1] is None and g[2] is None


def test_weighted_pool_is_eq13():
    fm, a = torch.randn(3, 5, 2, 3, 3), torch.rand(3, 2, 3, 3)
    want = torch.einsum('bcthw,bthw->bc', fm, a) / a.sum((1, 2, 3))[:, None]
    torch.testing.assert_close(weighted_pool(fm, a), want)


# --- switches of Tables 4-7 ---------------------------------------------------------------------------
TABLE4 = [(['vv'], False), (['vs'], False), (['vd'], False), (['vs', 'vd'], False), (['vs', 'vd'], True),
          (['vs', 'vd', 'sd'], False), (['vv', 'vs'], False), (['vv', 'vd'], False), (['vv', 'vs', 'vd'], False),
          (['vv', 'vs', 'vd', 'sd'], False)]


def _two_steps(cfg, n=2):
    torch.manual_seed(0)
    m = build_method(cfg)
    m.on_epoch_start(0)
    aug = ClipAugment(cfg.aug, cfg.data.size)
    outs = []
    for s in range(n):
        out = m.training_step(_batch(cfg, s), aug)
        assert torch.isfinite(out['loss']), out
        out['loss'].backward()
        outs.append(out)
    return m, outs


@pytest.mark.parametrize('losses,same_view', TABLE4)
def test_table4_losses(losses, same_view):
    m, outs = _two_steps(_cfg(losses=losses, same_view=same_view, search='none', act_loss=False, pool_s=False, pool_d=False), n=1)
    assert set(losses) <= set(outs[-1])


@pytest.mark.parametrize('search', ['none', 'static', 'dynamic', 'joint'])
def test_table5_search(search):
    m, outs = _two_steps(_cfg(search=search))
    if search in ('static', 'joint'): assert float(outs[-1]['searched_s']) == 1.0
    if search in ('dynamic', 'joint'): assert float(outs[-1]['searched_d']) == 1.0
    if search == 'none': assert m.queue is None and not any(k.startswith('searched') for k in outs[-1])


@pytest.mark.parametrize('topk,weighting', [(1, 'prior'), (3, 'uniform'), (3, 'prior')])
def test_table6_topk_weighting(topk, weighting):
    m, outs = _two_steps(_cfg(topk=topk, weighting=weighting))
    assert float(outs[-1]['searched_d']) == 1.0


@pytest.mark.parametrize('act_loss,pool_s,pool_d', [(False, False, False), (True, False, False), (True, True, False),
                                                    (True, False, True), (True, True, True)])
def test_table7_activation_switches(act_loss, pool_s, pool_d):
    m, outs = _two_steps(_cfg(search='none', act_loss=act_loss, pool_s=pool_s, pool_d=pool_d), n=1)
    assert ('ac' in outs[-1]) == act_loss


def test_corrected_loss_uses_the_configured_temperature():
    "Eq. 10 with the run's temperature: sum_k p_k [I(f(v); f(d~_k)) + I(f(v~_k); f(d))] recomputed by hand at tau 0.5."
    m, _ = _two_steps(_cfg(topk=2, **{'method.temperature': 0.5}))
    g = torch.Generator().manual_seed(1)
    a, x, key = (F.normalize(torch.randn(B, n, generator=g), dim=1) for n in (m.head.out_features, m.head.out_features, m.queue.get('key_d').shape[1]))
    assert m.tau == 0.5
    per = corrected_nce(m.queue, 'd', a, x, key, m.c.topk, m.c.weighting, m.tau)
    sims, pos = m.queue.topk('key_d', key, 2)
    p = search_weights(sims, 'prior')
    xs, vs = m.queue.get('d')[pos], m.queue.get('v_d')[pos]
    want = sum(p[:, k] * (pair_nce(a, xs[:, k], 0.5) + pair_nce(vs[:, k], x, 0.5)) for k in range(2))
    torch.testing.assert_close(per, want)
    assert not torch.allclose(per, sum(p[:, k] * (pair_nce(a, xs[:, k]) + pair_nce(vs[:, k], x)) for k in range(2)))


def test_search_and_refinement_start_epoch_and_refresh():
    cfg = _cfg(start_epoch=2, refresh_every=3)
    m = build_method(cfg)
    aug = ClipAugment(cfg.aug, cfg.data.size)
    m.on_epoch_start(0)
    out = m.training_step(_batch(cfg), aug)
    assert 'searched_d' not in out and len(m.queue) == 0  # not active yet
    with torch.no_grad():
        for p in m.backbone.parameters(): p.add_(0.1)
    m.on_epoch_start(2)  # refresh
    assert all(torch.equal(a, b) for a, b in zip(m.slow.parameters(), m.backbone.parameters()))
    m.training_step(_batch(cfg, 1), aug)
    assert len(m.queue) == B
    m.on_epoch_start(3)  # no refresh: queue kept
    assert len(m.queue) == B
    m.on_epoch_start(5)  # refresh: queue emptied
    assert len(m.queue) == 0
    assert not m.slow.training and m.train().slow.training is False


def test_state_dict_resumes_queue():
    m, _ = _two_steps(_cfg())
    m2 = build_method(_cfg()); m2.load_state_dict(m.state_dict())
    for k, v in m.state_dict().items(): assert torch.equal(v, m2.state_dict()[k]), k


def test_bad_configs():
    with pytest.raises(ValueError, match='subset of'): build_method(_cfg(losses=['vx']))
    with pytest.raises(ValueError, match="only maximises"): build_method(_cfg(losses=['sd']))
    with pytest.raises(ValueError, match="'vs' is not in"): build_method(_cfg(losses=['vd'], search='static'))
    with pytest.raises(ValueError, match='topk'): build_method(_cfg(topk=100))


def test_build_dataset_asks_for_T_plus_1_frames(monkeypatch):
    import s2vc_repro.data.datasets as dsmod
    seen = {}
    monkeypatch.setattr(dsmod, 'build_dataset', lambda cfg, subset, mode=None: seen.update(frames=cfg.data.frames, subset=subset, mode=mode) or 'ds')
    cfg = _cfg()
    assert DCLR.build_dataset(cfg) == 'ds'
    assert seen == {'frames': cfg.data.frames + 1, 'subset': 'train', 'mode': 'pair'}


def test_single_clip_items_and_no_index():
    cfg = _cfg()
    m = build_method(cfg); m.on_epoch_start(0)
    x = torch.randint(0, 256, (B, 3, cfg.data.frames + 1, H, H), dtype=torch.uint8)
    for _ in range(2): out = m.training_step({'video': x}, ClipAugment(cfg.aug, cfg.data.size))
    assert torch.isfinite(out['loss'])


def test_static_positive_step():
    cfg = get_config('smoke', {'method.name': 'static-positive'})
    m = build_method(cfg)
    aug = ClipAugment(cfg.aug, cfg.data.size)
    batch = {'video': torch.randint(0, 256, (B, 2, 3, cfg.data.frames, H, H), dtype=torch.uint8)}
    xq, xk = m.make_views(batch, aug)
    torch.testing.assert_close(xk, xk[:, :, :1].expand_as(xk))
    out = m.training_step(batch, aug)
    assert torch.isfinite(out['loss'])
    out['loss'].backward()


def test_steps_under_autocast():
    "Mixed precision (as the trainer uses on GPU; bfloat16 on CPU here): augmentation stays float32, losses finite."
    cfg = _cfg(search='joint')
    m = build_method(cfg); m.on_epoch_start(0)
    aug = ClipAugment(cfg.aug, cfg.data.size)
    for s in range(2):
        with torch.autocast('cpu', dtype=torch.bfloat16): out = m.training_step(_batch(cfg, s), aug)
        assert torch.isfinite(out['loss']); out['loss'].backward()
    sp = build_method(get_config('smoke', {'method.name': 'static-positive'}))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = sp.training_step({'video': torch.randint(0, 256, (B, 2, 3, 4, H, H), dtype=torch.uint8)}, aug)
    assert torch.isfinite(out['loss'])
