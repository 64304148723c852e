"DSM methods: the dataset's shifted clips and flow, the views, both objectives, Table-4 configs, the CLI."
import json, subprocess, sys
from pathlib import Path
import numpy as np
import pytest, torch
from torch.utils.data import DataLoader
from s2vc_repro.config import get_config
from s2vc_repro.augment import ClipAugment
from s2vc_repro.data.datasets import VideoRecord
from s2vc_repro.data.video import write_video
from s2vc_repro.methods.base import build_method
from s2vc_repro.methods.dsm import DSM, DSMTriplet, DSMDataset

N_FRAMES = 24

def counter_video(path, n=N_FRAMES, S=32):
    "Frame t is a flat grey of level 10 t (its index can be read back from the decoded mean)."
    v = np.zeros((n, S, S, 3), np.uint8)
    for t in range(n): v[t] = 10 * t
    return write_video(path, v)

def frame_ids(clip):  # (C, T, H, W) uint8 -> decoded frame indices
    return np.rint(clip.float().mean((0, 2, 3)).numpy() / 10).astype(int)

@pytest.fixture(scope='module')
def video(tmp_path_factory):
    return counter_video(tmp_path_factory.mktemp('v')/'c.mp4')

def test_shifted_clip_follows_eq4(video):
    ds = DSMDataset([VideoRecord(str(video), 0)] * 20, frames=8, stride=2, negative='tshift', shift=(2, 20), size=20)
    taus = set()
    for i in range(20):
        it = ds[i]
        a, n = frame_ids(it['video']), frame_ids(it['negative'])
        assert (np.diff(a) == 2).all()
        tau = (n[0] - a[0]) % N_FRAMES
        assert 2 <= tau <= 20 and ((a + tau) % N_FRAMES == n).all()  # tau frames later, looping over the video
        taus.add(tau)
    assert len(taus) > 3
    e0 = [frame_ids(ds[i]['negative']) for i in range(20)]
    ds.set_epoch(1)
    assert any((frame_ids(ds[i]['negative']) != e0[i]).any() for i in range(20))  # new clips every epoch

def test_items_per_negative_and_collate(video):
    keys = {'none': set(), 'tshift': {'negative'}, 'scaling': {'flow'}, 'mdisturb': {'negative', 'flow'}}
    for neg, extra in keys.items():
        ds = DSMDataset([VideoRecord(str(video), 0)] * 4, frames=6, negative=neg, size=20)
        b = next(iter(DataLoader(ds, batch_size=4)))
        assert set(b) == {'video', 'label', 'index'} | extra
        assert b['video'].shape == (4, 3, 6, 20, 20) and b['video'].dtype == torch.uint8
        if 'flow' in extra: assert b['flow'].shape == (4, 5, 20, 20, 2) and b['flow'].dtype == torch.float16
    with pytest.raises(ValueError, match='valid choices'): DSMDataset([VideoRecord(str(video), 0)], negative='xx')

def batch(cfg, B=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    T, S = cfg.data.frames, cfg.data.resize
    v = lambda: torch.randint(0, 256, (B, 3, T, S, S), generator=g, dtype=torch.uint8)
    return {'video': v(), 'negative': v(), 'flow': (2 * torch.randn(B, T - 1, S, S, 2, generator=g)).half(),
            'label': torch.zeros(B, dtype=torch.long), 'index': torch.arange(B)}

TABLE4 = [('swarp', 'none'), ('none', 'mdisturb'), ('swarp', 'scaling'), ('swarp', 'tshift'), ('swarp', 'mdisturb')]

@pytest.mark.parametrize('pos,neg', TABLE4)
def test_table4_rows_train_a_step(pos, neg):
    cfg = get_config('smoke', {'method.name': 'dsm', 'dsm.positive': pos, 'dsm.negative': neg})
    torch.manual_seed(0)
    m = build_method(cfg); aug = ClipAugment(cfg.aug, cfg.data.size)
    assert isinstance(m, DSM)
    out = m.training_step(batch(cfg), aug)
    assert torch.isfinite(out['loss'])
    out['loss'].backward()
    assert all(p.grad is not None for p in m.backbone.parameters())
    if pos == 'swarp' and neg in ('scaling', 'mdisturb'):
        t = build_method(get_config('smoke', {'method.name': 'dsm-triplet', 'dsm.positive': pos, 'dsm.negative': neg}))
        o = t.training_step(batch(cfg), aug)
        assert torch.isfinite(o['loss']) and 0 <= o['acc'] <= 1

@pytest.mark.parametrize('name', ['moco', 'dsm', 'dsm-triplet'])
def test_static_input_feeds_one_frame_repeated(name):
    "method.input 'static' (DSM Fig. 1's static twins): every clip the encoder sees is one of its frames repeated."
    cfg = get_config('smoke', {'method.name': name, 'method.input': 'static'})
    aug, seen = ClipAugment(cfg.aug, cfg.data.size), []
    spy = lambda x: seen.append(x) or aug(x)
    b = batch(cfg)
    if name == 'moco': b['video'] = torch.stack([b['video'], b['negative']], 1)  # MoCo's pairs
    torch.manual_seed(0)
    out = build_method(cfg).training_step(b, spy)
    assert torch.isfinite(out['loss']) and len(seen) == (2 if name == 'moco' else 3)
    assert all(torch.equal(x, x[:, :, :1].expand_as(x)) for x in seen)

def test_static_input_refused_by_methods_without_it():
    with pytest.raises(ValueError, match='does not train on static clips'):
        build_method(get_config('smoke', {'method.name': 'tfd', 'method.input': 'static'}))

def test_contrastive_logits_include_query_encoded_negative():
    "eq. 7: the intra-video negative adds one logit q.n/T, with n from the query encoder (gradient flows through it)."
    cfg = get_config('smoke', {'method.name': 'dsm'})
    torch.manual_seed(0)
    m = DSM(cfg); aug = ClipAugment(cfg.aug, cfg.data.size)
    q = torch.nn.functional.normalize(torch.randn(4, cfg.method.dim), dim=1)
    k = torch.nn.functional.normalize(torch.randn(4, cfg.method.dim), dim=1)
    base, _ = m.info_nce(q, k)
    with_q, _ = m.info_nce(q, k, q[:, None])            # a negative equal to the query: logit 1/T
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ m.queue.T], 1) / m.T
    want = -(logits[:, 0] - torch.logsumexp(torch.cat([logits, torch.full((4, 1), 1 / m.T)], 1), 1)).mean()
    assert torch.allclose(with_q, want, atol=1e-5) and with_q > base
    ctx = {'batch': batch(cfg), 'aug': aug}
    n = m.extra_negatives(ctx)
    assert n.shape == (4, 1, cfg.method.dim) and n.requires_grad and torch.allclose(n.norm(dim=-1), torch.ones(4, 1))
    n.sum().backward()
    assert all(p.grad is not None for p in m.backbone.parameters()) and all(p.grad is None for p in m.backbone_k.parameters())

def test_triplet_loss_is_eq5():
    cfg = get_config('smoke', {'method.name': 'dsm-triplet'})
    m = DSMTriplet(cfg)
    za = torch.nn.functional.normalize(torch.randn(3, cfg.method.dim), dim=1)
    zp, zn = za.clone(), -za                                # d_ap = 0, d_an = 2: satisfied, loss 0
    seq = iter([za, zp, zn])
    m.embed = lambda x: torch.cat([next(seq) for _ in range(3)])
    out = m.training_step(batch(cfg, 3), ClipAugment(cfg.aug, cfg.data.size))
    assert out['loss'].item() == 0 and out['acc'].item() == 1
    seq = iter([za, -za, za])                              # d_ap = 2, d_an = 0: loss 2 + margin
    out = m.training_step(batch(cfg, 3), ClipAugment(cfg.aug, cfg.data.size))
    assert abs(out['loss'].item() - (2 + cfg.dsm.margin)) < 1e-5 and out['acc'].item() == 0
    with pytest.raises(ValueError, match='intra-video negative'):
        DSMTriplet(get_config('smoke', {'method.name': 'dsm-triplet', 'dsm.negative': 'none'}))

def write_ucf(root: Path, n=8, T=12, S=32):
    "A tiny UCF101-format dataset of 2 classes."
    rng = np.random.default_rng(0)
    (root/'ucf101'/'splits').mkdir(parents=True)
    (root/'ucf101'/'splits'/'classInd.txt').write_text('1 A\n2 B\n')
    lines = []
    for i in range(n):
        c = 'AB'[i % 2]
        v = np.repeat(rng.integers(0, 255, (1, S, S, 3), dtype=np.uint8), T, 0)
        for t in range(T): v[t, 10:18, 2 * t % (S - 8): 2 * t % (S - 8) + 8] = 255
        write_video(root/'ucf101'/'videos'/c/f'v{i}.mp4', v)
        lines.append(f'{c}/v{i}.mp4')
    (root/'ucf101'/'splits'/'trainlist01.txt').write_text('\n'.join(lines) + '\n')

def test_cli_pretrain_and_triplet_train(tmp_path):
    "`s2vc-repro pretrain --method dsm` on a tiny UCF101-format set; 'dsm-triplet' through `train` on the same data."
    write_ucf(tmp_path/'data')
    sets = {'data.root': str(tmp_path/'data'), 'data.dataset': 'ucf101'}
    cli = str(Path(sys.executable).parent/'s2vc-repro')
    r = subprocess.run([cli, 'pretrain', '--method', 'dsm', '--profile', 'smoke', '--runs', str(tmp_path/'runs'),
                        *sum([['--set', f'{k}={v}'] for k, v in sets.items()], [])], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    run = Path(r.stdout.strip().splitlines()[-1])
    done = json.loads((run/'done.json').read_text())
    assert done['method'] == 'dsm' and np.isfinite(done['final']['loss']) and (run/'backbone.pt').exists()
    from s2vc_repro.train import train
    out = train(get_config('smoke', {'method.name': 'dsm-triplet', **sets}), tmp_path/'triplet', progress=False)
    assert np.isfinite(out['final']['loss']) and 0 <= out['final']['acc'] <= 1

def test_trains_on_data_without_shift_or_flow(tmp_path):
    "Random clips (no 'negative', no 'flow'): the shift loops over the clip and the flow is computed on the batch."
    from s2vc_repro.train import train
    cfg = get_config('smoke', {'method.name': 'dsm'})
    with pytest.warns(UserWarning):
        import s2vc_repro.methods.dsm as dsm; dsm._WARNED.clear()
        out = train(cfg, tmp_path/'run', progress=False, dataset='s2vc_repro.train:random_clips')
    assert np.isfinite(out['final']['loss'])
