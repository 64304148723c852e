"Normalizing flow: invertibility, log-determinant, bits/dim, resumable training, checkpoints, run folders."
import json, math
from pathlib import Path
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import s2vc_repro.flows as flows
from s2vc_repro.config import FlowCfg, get_config
from s2vc_repro.flows import (build_flow, encode, decode, nll, bits_per_dim, dequantize, evaluate_bpd, train_flow,
                              load_flow, FlowCheckpointError, flow_key, frames_to_images)
from s2vc_repro.data.synthetic import render_video

pytestmark = pytest.mark.usefixtures('one_thread')  # see conftest.py

MINI = get_config('mini').flow

def jitter(flow, std=0.05, seed=0):
    "Non-zero subnet weights, as after training (a fresh flow's couplings are the identity)."
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            if p.requires_grad: p.add_(std * torch.randn(p.shape, generator=g))
    return flow

def real_frames(size, n_videos=4, seed=0):
    "Frames of the synthetic benchmark, average-pooled to `size`, in [0, 1]: (N, 3, size, size)."
    cfg = get_config('smoke')
    rng = np.random.default_rng(seed)
    v = np.stack([render_video(i % cfg.synth.n_classes, i % cfg.synth.n_families, rng, cfg.synth) for i in range(n_videos)])
    x = torch.from_numpy(v).flatten(0, 1).permute(0, 3, 1, 2).float() / 255
    return F.adaptive_avg_pool2d(x, size)

@pytest.fixture(scope='module')
def smoke_images():
    cfg = get_config('smoke')
    rng = np.random.default_rng(0)
    v = torch.from_numpy(np.stack([render_video(i % cfg.synth.n_classes, i % cfg.synth.n_families, rng, cfg.synth) for i in range(10)]))
    ims = frames_to_images(v.flatten(0, 1), cfg, torch.Generator().manual_seed(0))
    return ims[:-40], ims[-40:]

@pytest.mark.parametrize('kind', ['random', 'real'])
def test_inverse(kind):
    flow = jitter(build_flow(MINI))
    x = torch.rand(16, 3, 16, 16) if kind == 'random' else real_frames(16)[:16]
    with torch.no_grad():
        z = encode(flow, x)
        assert z.shape == (16, 3 * 16 * 16)
        assert (decode(flow, z) - x).abs().max() < 1e-4
        assert (encode(flow, decode(flow, z)) - z).abs().max() < 1e-3

def test_logdet_matches_numerical_jacobian():
    flow = jitter(build_flow(FlowCfg(size=4, hr_blocks=2, lr_blocks=2, fc_blocks=2, hidden=8, fc_hidden=8)), std=0.2).double()
    x = torch.rand(1, 3, 4, 4, dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda v: encode(flow, v.view(1, 3, 4, 4))[0], x.flatten())
    sign, logabs = torch.slogdet(J)
    assert abs(logabs.item() - flow(x)[1].item()) < 1e-4
    assert abs(logabs.item()) > 0.1  # the test is not trivial: the couplings do change volume

def test_build_is_seeded_and_side_effect_free():
    np.random.seed(123); a = np.random.rand()
    np.random.seed(123); build_flow(MINI); b = np.random.rand()
    assert a == b  # numpy's global generator is untouched
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(encode(build_flow(MINI, seed=3), x), encode(build_flow(MINI, seed=3), x))
    with pytest.raises(ValueError, match='even'): build_flow(FlowCfg(size=7))

def test_bits_per_dim_of_identity():
    "A fresh flow is volume-preserving: bits/dim = 8 + mean(0.5 z^2 + 0.5 log 2pi)/log 2 exactly."
    flow = build_flow(FlowCfg(size=8, hr_blocks=1, lr_blocks=1, fc_blocks=1, hidden=4, fc_hidden=4))
    x = dequantize(torch.randint(0, 256, (8, 3, 8, 8), dtype=torch.uint8), generator=torch.Generator().manual_seed(0))
    z = encode(flow, x)
    expect = 8 + (0.5 * (z ** 2).mean(1) + 0.5 * math.log(2 * math.pi)) / math.log(2)
    torch.testing.assert_close(bits_per_dim(nll(flow, x), flow.dims), expect)

def test_training_lowers_bits_per_dim(tmp_path, smoke_images):
    cfg = get_config('smoke', {'flow.steps': 60, 'flow.lr': 3e-3})
    train, held = smoke_images
    untrained = evaluate_bpd(build_flow(cfg.flow), held)
    ck = train_flow(cfg, tmp_path, device='cpu', progress=False, images=smoke_images)
    done = json.loads((tmp_path/'done.json').read_text())
    assert done['bits_per_dim'] < untrained - 0.2, (done['bits_per_dim'], untrained)
    assert abs(evaluate_bpd(load_flow(ck, cfg.flow), held) - done['bits_per_dim']) < 1e-4
    assert not (tmp_path/'ckpt.pt').exists() and not list(tmp_path.glob('*.tmp*'))
    assert [json.loads(l)['step'] for l in (tmp_path/'log.jsonl').read_text().splitlines()] == [50, 60]

def test_training_resumes(tmp_path, smoke_images, monkeypatch):
    cfg = get_config('smoke', {'flow.steps': 8})
    ref = train_flow(cfg, tmp_path/'ref', device='cpu', progress=False, images=smoke_images, ckpt_every=3)
    calls = {'n': 0}
    orig = flows.dequantize
    def crash_at_7(*a, **k):
        calls['n'] += 1
        if calls['n'] == 7: raise KeyboardInterrupt('simulated crash')
        return orig(*a, **k)
    monkeypatch.setattr(flows, 'dequantize', crash_at_7)
    with pytest.raises(KeyboardInterrupt): train_flow(cfg, tmp_path/'run', device='cpu', progress=False, images=smoke_images, ckpt_every=3)
    assert torch.load(tmp_path/'run'/'ckpt.pt', weights_only=True)['step'] == 6 and not (tmp_path/'run'/'flow.pt').exists()
    monkeypatch.setattr(flows, 'dequantize', orig)
    out = train_flow(cfg, tmp_path/'run', device='cpu', progress=False, images=smoke_images, ckpt_every=3)
    a, b = torch.load(ref, weights_only=True)['state'], torch.load(out, weights_only=True)['state']
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # the resumed run equals the uninterrupted one

def test_load_flow_errors(tmp_path):
    with pytest.raises(FlowCheckpointError, match='flow.checkpoint is empty'): load_flow('')
    with pytest.raises(FlowCheckpointError, match=r'does not exist.*s2vc-repro pretrain'): load_flow(tmp_path/'nope.pt')
    (tmp_path/'bad.pt').write_text('not a checkpoint')
    with pytest.raises(FlowCheckpointError, match='cannot be read'): load_flow(tmp_path/'bad.pt')
    torch.save({'x': 1}, tmp_path/'other.pt')
    with pytest.raises(FlowCheckpointError, match='not a flow checkpoint'): load_flow(tmp_path/'other.pt')

def image_folder(root, n=40, size=8):
    "A folder of `n` random PNG images (a flow's training images that need no videos)."
    from torchvision.io import write_png
    g = torch.Generator().manual_seed(0)
    Path(root).mkdir(parents=True, exist_ok=True)
    for i in range(n): write_png(torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g), str(Path(root)/f'im{i}.png'))
    return str(root)

def test_flow_run_dir_hash():
    "The store names a flow run by what determines it: not the run's seed, paths or other sections."
    from s2vc_repro.runs import RunStore
    store = RunStore('/tmp/unused-store-root-of-a-test')
    cfg = get_config('mini', {'method.name': 's2vc'})
    d = store.flow_dir(cfg)
    assert d.name.startswith('flow-') and d.parent == store.root
    assert d == store.flow_dir(cfg.replace(**{'flow.checkpoint': 'x.pt', 'data.root': '/else', 'train.epochs': 3, 'method.queue': 7, 'train.seed': 2}))
    for k, v in [('flow.seed', 1), ('flow.hidden', 8), ('flow.steps', 10), ('data.dataset', 'ucf101'), ('synth.seed', 5), ('data.size', 24)]:
        assert d != store.flow_dir(cfg.replace(**{k: v})), k
    assert d.name == 'flow-' + __import__('s2vc_repro.config', fromlist=['key_hash']).key_hash(flow_key(cfg), compact=False)

def test_flow_run_is_a_store_job_trained_once(tmp_path):
    "A flow run is made like any run of the store (its own process, its lock), once: asking again reuses it."
    from s2vc_repro.runs import RunStore
    cfg = get_config('smoke', {'method.name': 's2vc', 'flow.steps': 2, 'flow.images': image_folder(tmp_path/'ims'), 'data.root': str(tmp_path/'data')})
    store = RunStore(tmp_path/'runs', echo=False)
    job = store.flow_job(cfg)
    store.ensure([job])
    p = job.dir/'flow.pt'
    assert p.exists() and json.loads((job.dir/'job.json').read_text())['kind'] == 'flow'
    t = p.stat().st_mtime_ns
    store.ensure([job])
    assert p.stat().st_mtime_ns == t and store.todo([job]) == []
    load_flow(p, cfg.flow)
    assert not (tmp_path/'data').exists()  # images from a folder: no video data was made

def test_folder_images(tmp_path):
    from torchvision.io import write_png
    for i in range(5): write_png(torch.randint(0, 256, (3, 20 + i, 30), dtype=torch.uint8), str(tmp_path/f'im{i}.png'))
    tr, he = flows.folder_images(tmp_path, 8)
    assert tr.shape == (4, 3, 8, 8) and he.shape == (1, 3, 8, 8) and tr.dtype == torch.uint8
    with pytest.raises(ValueError, match='need at least 2'): flows.folder_images(tmp_path/'empty', 8)
