"S2VC suppression (eq. 3-5) and its strategies, TFD, and the `s2vc`/`tfd` methods (prepare, checkpoint errors, steps)."
from types import SimpleNamespace
import pytest
import torch
import s2vc_repro.flows as flows
from s2vc_repro.config import FlowCfg, get_config
from s2vc_repro.flows import build_flow, FlowCheckpointError
from s2vc_repro.methods.base import build_method, method_class
from s2vc_repro.config import SUPPRESSIONS
from s2vc_repro.methods.s2vc import suppress, suppress_latents, tfd, encode_clip
from s2vc_repro.augment import ClipAugment, IMAGENET_MEAN

pytestmark = pytest.mark.usefixtures('one_thread')  # see conftest.py

FC = FlowCfg(size=8, hr_blocks=1, lr_blocks=1, fc_blocks=1, hidden=8, fc_hidden=16)

@pytest.fixture(scope='module')
def flow():
    f = build_flow(FC)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a non-trivial flow, as after training
        for p in f.parameters():
            if p.requires_grad: p.add_(0.05 * torch.randn(p.shape, generator=g))
    return f.requires_grad_(False)

def clip_with_static_half(B=2, T=6, S=8):
    "Clips whose left half is constant over time and right half random: (B, 3, T, S, S) in [0, 1]."
    x = torch.rand(B, 3, T, S, S)
    x[..., : S // 2] = x[:, :, :1, :, : S // 2]
    return x

def test_alpha_zero_keeps_the_clip(flow):
    x = torch.rand(2, 3, 5, 16, 16)
    out, kept = suppress(flow, x, alpha=0.)
    assert out.shape == x.shape and (out - x).abs().max() < 1e-4
    assert torch.equal(kept, torch.ones(2))

def test_alpha_huge_makes_everything_static(flow):
    x = torch.rand(2, 3, 5, 8, 8)
    for s in ('zero', 'noise'):
        out, kept = suppress(flow, x, alpha=1e9, strategy=s)
        assert torch.equal(kept, torch.zeros(2))
        assert (out - out[:, :, :1]).abs().max() < 1e-4  # every frame is the same image

@pytest.mark.parametrize('strategy', list(SUPPRESSIONS))
def test_strategies_in_latent_space(flow, strategy):
    x = torch.rand(2, 3, 6, 8, 8) * 0.3 + clip_with_static_half()  # at flow resolution: out = decode(Z_p) exactly
    z, _ = encode_clip(flow, x)
    alpha = z.std(1, correction=0).median().item()  # about half the dimensions are static
    g = torch.Generator().manual_seed(0)
    out, kept = suppress(flow, x, alpha, strategy, generator=g)
    assert out.shape == x.shape and kept.shape == (2,)
    zp, _ = encode_clip(flow, out)
    static = z.std(1, correction=0) < alpha
    m = static[:, None].expand_as(z)
    torch.testing.assert_close(kept, 1 - static.float().mean(1))
    assert (zp - z)[~m].abs().max() < 1e-3  # dynamic dimensions untouched
    zs = zp[m].view(-1)
    if strategy == 'zero': assert zs.abs().max() < 1e-3
    if strategy == 'noise':
        held = zp - zp[:, :1]
        assert held[m].abs().max() < 1e-3 and zp[m].std() > 0.3  # one standard-normal draw, the same in every frame
    if strategy == 'shuffle-clip':  # each static dimension keeps its multiset of values over the clip
        torch.testing.assert_close(torch.where(m, zp, 0).sort(1).values, torch.where(m, z, 0).sort(1).values, atol=1e-3, rtol=0)
    if strategy == 'shuffle-frame':  # each frame keeps its multiset of static values
        for b in range(2):
            torch.testing.assert_close(zp[b][:, static[b]].sort(1).values, z[b][:, static[b]].sort(1).values, atol=1e-3, rtol=0)
        assert (zp[m] - z[m]).abs().max() > 1e-2

def test_suppress_latents_rejects_bad_input():
    with pytest.raises(ValueError, match='valid choices'): suppress_latents(torch.zeros(1, 2, 3), 0.5, 'median')
    with pytest.raises(ValueError, match=r'\(B, T, D\)'): suppress_latents(torch.zeros(2, 3), 0.5)

def test_residual_is_nearest_upsampled(flow):
    "At 2x the flow size, what suppression adds is constant on each 2x2 block (the upsampled residual)."
    x = torch.rand(1, 3, 4, 16, 16)
    out, _ = suppress(flow, x, alpha=0.5)
    d = out - x
    blocks = d.unfold(3, 2, 2).unfold(4, 2, 2)  # (1, 3, 4, 8, 8, 2, 2)
    assert (blocks - blocks[..., :1, :1]).abs().max() < 1e-5

def test_suppress_under_autocast_runs_in_float32(flow):
    x = torch.rand(2, 3, 4, 8, 8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out, _ = suppress(flow, x, alpha=0.)
    assert out.dtype == torch.float32 and (out - x).abs().max() < 1e-4

def test_tfd_keeps_the_right_share():
    x = clip_with_static_half(B=3, T=5, S=10)
    for keep in (0., 0.2, 0.5, 1.):
        out, kept = tfd(x, keep)
        torch.testing.assert_close(kept, torch.full((3,), keep))
        same = (out == x).all(2).float().mean((1, 2, 3))
        assert (same >= keep - 1e-6).all()
    out, _ = tfd(x, 0.2)
    fill = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1).expand_as(out)
    assert torch.equal(out[..., :5], fill[..., :5])  # the static half is filled with the normalisation mean
    with pytest.raises(ValueError, match='tfd_keep'): tfd(x, 1.5)

def batch_of(cfg, B=4):
    return {'video': torch.randint(0, 256, (B, 2, 3, cfg.data.frames, cfg.data.resize, cfg.data.resize), dtype=torch.uint8)}

def test_methods_are_registered():
    assert method_class('s2vc').name == 's2vc' and method_class('tfd').name == 'tfd'

def test_s2vc_needs_a_flow(tmp_path):
    cfg = get_config('smoke', {'method.name': 's2vc'})
    with pytest.raises(FlowCheckpointError, match='s2vc-repro pretrain'): build_method(cfg)
    bad = cfg.replace(**{'flow.checkpoint': str(tmp_path/'missing.pt')})
    with pytest.raises(FlowCheckpointError, match='missing.pt'): build_method(bad)
    with pytest.raises(FlowCheckpointError, match='missing.pt'): method_class('s2vc').prepare(bad, {})

def test_store_makes_the_flow_first_and_training_steps(tmp_path):
    "The store puts the flow run before the S2VC run; the S2VC config points at it (same hash), and a method built on it trains."
    from s2vc_repro.runs import RunStore
    from torchvision.io import write_png
    for i in range(40): write_png(torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8), str(tmp_path/f'im{i}.png'))
    cfg = get_config('smoke', {'method.name': 's2vc', 'flow.steps': 3, 'flow.images': str(tmp_path)})
    store = RunStore(tmp_path/'runs', echo=False)
    job = store.job(cfg)
    assert [d.kind for d in job.deps] == ['flow'] and [j.kind for j in store.graph([job])] == ['flow', 'pretrain']
    c2 = job.cfg
    assert c2.hash == cfg.hash and c2.flow.checkpoint == str(store.flow_dir(cfg)/'flow.pt')
    store.ensure([job.deps[0]])  # the flow alone
    assert store.todo([job.deps[0]]) == [] and store.todo([job]) == [job]
    m = build_method(c2)
    aug = ClipAugment(c2.aug, c2.data.size)
    out = m.training_step(batch_of(c2), aug)
    out['loss'].backward()
    assert torch.isfinite(out['loss']) and 0 <= out['kept'] <= 1
    assert not any(k.startswith('_flow') or 'inn' in k for k in m.state_dict())
    assert all(p.grad is None for p in m.flow.parameters())

def test_key_clip_is_suppressed_and_normalised(flow, monkeypatch):
    cfg = get_config('smoke', {'method.name': 's2vc', 's2vc.alpha': 1e9, 'flow.size': 8})
    m = build_method(cfg, flow=flow)
    xq, xk = m.make_views(batch_of(cfg), ClipAugment(cfg.aug, cfg.data.size))
    assert xq.shape == xk.shape == (4, 3, cfg.data.frames, cfg.data.size, cfg.data.size)
    pooled = torch.nn.functional.avg_pool3d(xk, (1, 2, 2))
    assert (pooled - pooled[:, :, :1]).abs().max() < 1e-3  # alpha huge: the key is static at flow resolution
    assert m._kept == 0

def test_tfd_method_step():
    cfg = get_config('smoke', {'method.name': 'tfd'})
    m = build_method(cfg)
    out = m.training_step(batch_of(cfg), ClipAugment(cfg.aug, cfg.data.size))
    assert torch.isfinite(out['loss']) and abs(out['kept'].item() - cfg.s2vc.tfd_keep) < 0.01
