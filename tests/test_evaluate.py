"Evaluation protocols: determinism, linear probe, finetune, chunked retrieval vs brute force, bias metrics, CAM, end to end."
import json, zlib
import numpy as np
import pytest
import torch, torch.nn as nn

from s2vc_repro.config import get_config
from s2vc_repro.augment import ClipAugment, TestTransform
from s2vc_repro.data.datasets import read_meta
from s2vc_repro.methods.dclr import activation_map
from s2vc_repro.evaluate import (extract_features, linear_probe, predict, finetune, make_test_transform,
                                 nearest_neighbours, retrieval_recall, home_families, bias_metrics, _rows,
                                 evaluate_backbone, eval_datasets, cam, BIAS_SPLITS, _split_families)


class Tiny(nn.Module):
    "Backbone interface: `.feat_dim`, `.features`, pooled `forward`."
    def __init__(self, d=16):
        super().__init__()
        self.feat_dim = d
        self.net = nn.Sequential(nn.Conv3d(3, 8, 3, padding=1), nn.BatchNorm3d(8), nn.ReLU(), nn.Dropout(0.5),
                                 nn.Conv3d(8, d, 3, stride=2, padding=1), nn.ReLU())
    def features(self, x): return self.net(x)
    def forward(self, x): return self.features(x).mean((2, 3, 4))


def fake_items(n, n_classes=3, seed=0, n_clips=2, T=4, S=20, one_clip=False):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        c = i % n_classes
        v = rng.integers(0, 60, (n_clips, 3, T, S, S))
        for t in range(T):
            x0 = int(rng.integers(0, S - 6)); v[:, c % 3, t, 6:12, x0:x0 + 6] = 220
        v = torch.from_numpy(v.astype(np.uint8))
        out.append(dict(video=v[0] if one_clip else v, label=c, index=i))
    return out


# ---------------------------------------------------------------- feature extraction
def test_extraction_is_deterministic_and_restores_mode():
    torch.manual_seed(0)
    bb, ds = Tiny().train(), fake_items(10)
    a = extract_features(bb, ds, batch_size=3, device='cpu', transform=TestTransform(16))
    b = extract_features(bb, ds, batch_size=7, device='cpu', transform=TestTransform(16))
    torch.testing.assert_close(a[0], b[0], rtol=1e-5, atol=1e-6)
    c = extract_features(bb, ds, batch_size=3, device='cpu', transform=TestTransform(16))
    assert torch.equal(a[0], c[0]) and torch.equal(a[1], c[1])
    assert bb.training


def test_extraction_averages_clips_and_crops_with_ragged_videos():
    torch.manual_seed(0)
    bb, tf = Tiny().eval(), TestTransform(16, ten_crop=True)
    ds = [dict(video=d['video'][:1 + i % 3 if i % 3 < 2 else 2], label=d['label'], index=i) for i, d in enumerate(fake_items(7, n_clips=3))]
    ds[6]['video'] = ds[6]['video'][0]  # a single (C, T, H, W) clip
    f, y = extract_features(bb, ds, batch_size=5, device='cpu', transform=tf)
    for i, d in enumerate(ds):
        v = d['video'] if d['video'].dim() == 5 else d['video'][None]
        with torch.no_grad(): ref = bb(tf(v).flatten(0, 1)).mean(0)
        torch.testing.assert_close(f[i], ref, rtol=1e-4, atol=1e-5)
    assert y.tolist() == [d['label'] for d in ds]


def test_test_transform_follows_the_config():
    cfg = get_config('paper')
    tf = make_test_transform(cfg)
    assert isinstance(tf, TestTransform) and (tf.size, tf.ten_crop, tf.mean) == (cfg.data.size, True, cfg.aug.mean)


def test_dsm_max_pool_features():
    bb, ds = Tiny().eval(), fake_items(4)
    f, _ = extract_features(bb, ds, device='cpu', transform=TestTransform(16), pool=(2, 2, 2))
    assert f.shape == (4, 16 * 8)


# ---------------------------------------------------------------- linear probe
def test_linear_probe_separable_is_perfect():
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 4, (10, 64))
    ytr, yte = np.arange(500) % 10, np.arange(200) % 10
    Xtr, Xte = centers[ytr] + rng.normal(0, .3, (500, 64)), centers[yte] + rng.normal(0, .3, (200, 64))
    r = linear_probe(Xtr, ytr, Xte, yte, epochs=10, lr=1e-2, device='cpu')
    assert r['acc'] == 1.0 and (r['preds'] == yte).all() and r['probs'].shape == (200, 10)
    np.testing.assert_allclose(predict(r['head'], Xte, device='cpu'), r['probs'], rtol=1e-5, atol=1e-6)


def test_linear_probe_few_steps_small_scale_features():
    "Test-time BatchNorm statistics are the training features' own, even after a handful of steps."
    rng = np.random.default_rng(1)
    centers = rng.normal(0, 1e-2, (3, 16))
    y = np.arange(12) % 3
    X = 5.0 + centers[y] + rng.normal(0, 1e-3, (12, 16))  # offset and tiny spread: far from BN's initial (0, 1)
    r = linear_probe(X, y, X, y, epochs=30, lr=1e-2, batch_size=16, device='cpu')
    assert r['acc'] == 1.0  # an exponential running average (momentum 0.1) gets 1/3 here


def test_linear_probe_random_labels_near_chance_and_errors():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(400, 8)), rng.integers(0, 4, 400)
    r = linear_probe(X[:300], y[:300], X[300:], y[300:], epochs=5, device='cpu')
    assert r['acc'] < 0.5
    with pytest.raises(ValueError, match='differ in length'): linear_probe(X, y[:10], X, y, device='cpu')


# ---------------------------------------------------------------- finetune
def test_finetune_learns_and_copies_backbone():
    torch.manual_seed(0)
    bb = Tiny()
    before = {k: v.clone() for k, v in bb.state_dict().items()}
    cfg = get_config('smoke', {'data.size': 16, 'eval.finetune_epochs': 10, 'eval.finetune_lr': 0.3, 'eval.batch_size': 12})
    r = finetune(bb, 3, fake_items(36, seed=1, one_clip=True), fake_items(12, seed=2), cfg, device='cpu',
                 train_transform=ClipAugment(cfg.aug, 16, strong=False, seed=0), test_transform=TestTransform(16))
    assert r['acc'] >= 0.75, r['acc']  # chance 1/3
    assert all(torch.equal(before[k], v) for k, v in bb.state_dict().items())


def test_finetune_rejects_multi_clip_training_items():
    cfg = get_config('smoke', {'data.size': 16})
    with pytest.raises(ValueError, match="mode 'train'"):
        finetune(Tiny(), 3, fake_items(4), fake_items(4), cfg, device='cpu', train_transform=ClipAugment(cfg.aug, 16, strong=False, seed=0), test_transform=TestTransform(16))


# ---------------------------------------------------------------- retrieval
def brute_force(q, g, ql, gl, ks, center='gallery'):
    q, g = q.astype(np.float64), g.astype(np.float64)
    if center == 'gallery': m = g.mean(0); q, g = q - m, g - m
    elif center == 'each': q, g = q - q.mean(0), g - g.mean(0)
    q /= np.linalg.norm(q, axis=1, keepdims=True); g /= np.linalg.norm(g, axis=1, keepdims=True)
    order = np.argsort(-(q @ g.T), axis=1, kind='stable')
    return {k: float(np.mean([(gl[o[:k]] == l).any() for o, l in zip(order, ql)])) for k in ks}, order


@pytest.mark.parametrize('center', ['gallery', 'each', None])
@pytest.mark.parametrize('chunk', [1, 7, None])
def test_retrieval_matches_brute_force(center, chunk):
    rng = np.random.default_rng(3)
    g, q = rng.normal(size=(500, 32)).astype(np.float32) + 0.3, rng.normal(size=(123, 32)).astype(np.float32) + 0.3
    gl, ql = rng.integers(0, 20, 500), rng.integers(0, 20, 123)
    ks = (1, 5, 10, 20, 50)
    ref, order = brute_force(q, g, ql, gl, ks, center)
    got = retrieval_recall(q, g, ql, gl, ks, center=center, chunk=chunk, device='cpu')
    assert got == ref
    _, idx = nearest_neighbours(q, g, k=10, center=center, chunk=chunk, device='cpu')
    np.testing.assert_array_equal(idx.numpy(), order[:, :10])


def test_retrieval_memory_bound_and_edge_cases():
    rng = np.random.default_rng(0)
    g, q = rng.normal(size=(50, 8)), rng.normal(size=(20, 8))
    gl, ql = rng.integers(0, 3, 50), rng.integers(0, 3, 20)
    ref, _ = brute_force(q, g, ql, gl, (1, 5))
    assert retrieval_recall(q, g, ql, gl, (1, 5), max_elems=60, device='cpu') == ref  # one query per chunk
    r = retrieval_recall(q, g, ql, gl, (1, 100), device='cpu')  # k larger than the gallery
    assert r[100] == 1.0
    # identical features: every query finds itself
    assert retrieval_recall(g, g, gl, gl, (1,), device='cpu')[1] == 1.0
    with pytest.raises(ValueError, match='valid choices'): retrieval_recall(q, g, ql, gl, center='median', device='cpu')
    with pytest.raises(ValueError, match='labels do not match'): retrieval_recall(q, g, ql[:3], gl, device='cpu')
    with pytest.raises(ValueError, match=r'\(Q, D\)'): retrieval_recall(q[:, :4], g, ql, gl, device='cpu')


def test_retrieval_recall_monotone_in_k():
    rng = np.random.default_rng(5)
    r = retrieval_recall(rng.normal(size=(64, 16)), rng.normal(size=(256, 16)), rng.integers(0, 10, 64), rng.integers(0, 10, 256), device='cpu')
    v = [r[k] for k in (1, 5, 10, 20, 50)]
    assert v == sorted(v)


# ---------------------------------------------------------------- bias metrics
def toy_meta():
    home = {c: (c * 3 + 1) % 4 for c in range(8)}  # not the generator's formula on purpose
    rows = []
    for s in ('train',) + BIAS_SPLITS:
        for i in range(16):
            c = i % 8
            f = (home[c] + 1 + i % 3) % 4 if s == 'conflicting' else home[c]
            rows.append(dict(path=f'C{c}/{s}_{i}.mp4', subset=s, label=c, family=f, home_family=home[c], aligned=int(f == home[c])))
    return rows, home


def test_bias_metrics_hand_computed():
    rows, home = toy_meta()
    assert home_families(rows) == home
    conf = [r for r in rows if r['subset'] == 'conflicting']
    labels = {s: np.array([r['label'] for r in rows if r['subset'] == s]) for s in BIAS_SPLITS}
    preds = {s: labels[s].copy() for s in BIAS_SPLITS}
    # conflicting: 8 right, 4 predicted as a class of the video's scene (wrong), 4 wrong but not a scene class
    scene = {f: [c for c in home if home[c] == f] for f in range(4)}
    for i, r in enumerate(conf):
        if 8 <= i < 12: preds['conflicting'][i] = scene[r['family']][0]
        elif i >= 12: preds['conflicting'][i] = next(c for c in range(8) if home[c] not in (r['family'], home[r['label']]))
    preds['static'][:4] = (labels['static'][:4] + 1) % 8
    m = bias_metrics(preds, labels, rows)
    assert m['standard'] == 1.0 and m['aligned'] == 1.0 and m['shuffled'] == 1.0
    assert m['conflicting'] == 0.5 and m['static'] == 0.75
    assert m['gap'] == 0.5 and m['aligned_gap'] == 0.5
    assert m['scene_share'] == 0.25 and m['scene_chance'] == 0.25
    # explicit families in another order give the same answer when permuted consistently
    perm = np.random.default_rng(0).permutation(16)
    p2 = dict(preds, conflicting=preds['conflicting'][perm]); l2 = dict(labels, conflicting=labels['conflicting'][perm])
    m2 = bias_metrics(p2, l2, rows, families=[conf[i]['family'] for i in perm])
    assert m2 == m


def test_bias_metrics_reads_home_from_aligned_rows_and_errors(tmp_path):
    rows, home = toy_meta()
    p = tmp_path/'meta.csv'
    keys = list(rows[0])
    p.write_text(','.join(keys) + '\n' + '\n'.join(','.join(str(r[k]) for k in keys) for r in rows) + '\n')
    meta = read_meta(tmp_path.parent, tmp_path.name)  # <root>/<name>/meta.csv, as a DataFrame
    assert home_families(meta) == home and home_families(_rows(meta)) == home
    bad = [dict(r) for r in rows]; bad[0] = dict(bad[0], family=(bad[0]['family'] + 1) % 4)  # an aligned row with another family
    with pytest.raises(ValueError, match='disagree'): home_families(bad)
    with pytest.raises(ValueError, match='valid splits'): bias_metrics({'tset': [0]}, {'tset': [0]}, rows)


def test_split_families_matches_paths():
    rows, _ = toy_meta()
    class R:  # a record as VideoDataset holds them: absolute path
        def __init__(self, p): self.path = '/data/synth-ucf/videos/' + p
    conf = [r for r in rows if r['subset'] == 'conflicting']
    class DS(list): pass
    ds = DS(range(16)); ds.records = [R(r['path']) for r in conf[::-1]]
    assert _split_families(ds, rows, 'conflicting') == [r['family'] for r in conf[::-1]]


# ---------------------------------------------------------------- activation maps
def test_activation_map_and_cam():
    torch.manual_seed(0)
    fm = torch.randn(3, 5, 2, 4, 4)
    a = activation_map(fm, size=(8, 16, 16), normalize=True)
    assert a.shape == (3, 8, 16, 16)
    for i in range(3): assert a[i].min() == 0 and torch.isclose(a[i].max(), torch.tensor(1.))
    ref = fm.abs().sum(1); ref = (ref - ref.amin((1, 2, 3), keepdim=True)) / (ref.amax((1, 2, 3), keepdim=True) - ref.amin((1, 2, 3), keepdim=True))
    torch.testing.assert_close(activation_map(fm, normalize=True), ref)
    W = torch.randn(4, 5)
    c = cam(fm, W, torch.tensor([0, 1, 3]))
    raw = torch.einsum('c,cthw->thw', W[3], fm[2]); raw = (raw - raw.min()) / (raw.max() - raw.min())
    torch.testing.assert_close(c[2], raw)
    assert cam(fm, W, 2, size=(16, 16)).shape == (3, 2, 16, 16)
    with pytest.raises(ValueError, match='B, C, T, H, W'): activation_map(torch.zeros(2, 3, 4))


# ---------------------------------------------------------------- evaluate_backbone
def fake_build(cfg, name, subset, mode):
    items = fake_items(18 if subset == 'train' else 9, seed=zlib.crc32(f'{name}/{subset}'.encode()) % 997, one_clip=(mode == 'train'))
    return items


def test_evaluate_backbone_fake_data_all_protocols():
    torch.manual_seed(0)
    rows = [dict(path=f'{s}/{i}', subset=s, label=i % 3, family=(i % 3 + (s == 'conflicting')) % 3, home_family=i % 3,
                 aligned=s != 'conflicting') for s in ('train',) + BIAS_SPLITS for i in range(18 if s == 'train' else 9)]
    cfg = get_config('smoke', {'data.size': 16, 'eval.retrieval_ks': (1, 5)})
    out = evaluate_backbone(cfg, Tiny(), ('linear', 'retrieval', 'bias', 'finetune'), device='cpu',
                            datasets=('synth-ucf', 'synth-hmdb'), build=fake_build, meta={'synth-ucf': rows, 'synth-hmdb': rows})
    for d in ('synth-ucf', 'synth-hmdb'):
        for k in ('linear/top1', 'retrieval/R@1', 'retrieval/R@5', 'finetune/top1', 'bias/standard', 'bias/aligned',
                  'bias/conflicting', 'bias/static', 'bias/shuffled', 'bias/gap', 'bias/aligned_gap', 'bias/scene_share'):
            assert f'{d}/{k}' in out, k
    assert out['synth-ucf/bias/standard'] == out['synth-ucf/linear/top1']
    json.dumps(out)
    assert all(isinstance(v, float) for v in out.values())
    with pytest.raises(ValueError, match='valid protocols'): evaluate_backbone(cfg, Tiny(), ('probe',), build=fake_build)


def test_eval_datasets_defaults():
    assert eval_datasets(get_config('mini')) == ('synth-ucf', 'synth-hmdb')
    assert eval_datasets(get_config('paper')) == ('ucf101', 'hmdb51')
    assert eval_datasets(get_config('paper', {'data.dataset': 'k400'})) == ('ucf101', 'hmdb51')


def _write_mini_benchmark(root, n_classes=3, n_train=9, n_test=6, T=20, S=24):
    "A tiny synthetic-format dataset (mp4 files, UCF101 split lists, meta.csv) written here, independent of the generator."
    cv2 = pytest.importorskip('cv2')
    base = root/'synth-ucf'
    (base/'splits').mkdir(parents=True)
    (base/'splits'/'classInd.txt').write_text(''.join(f'{c + 1} Dir{c}\n' for c in range(n_classes)))
    rng = np.random.default_rng(0)
    meta, lists = ['path,subset,label,family,home_family,aligned'], {}
    for s in ('train',) + BIAS_SPLITS:
        for i in range(n_train if s == 'train' else n_test):
            c = i % n_classes; home = c
            fam = (home + 1) % n_classes if s == 'conflicting' else home
            rel = f'Dir{c}/v_Dir{c}_{s}_{i:02d}.mp4'
            bg = np.zeros((S, S, 3), np.uint8); bg[..., fam % 3] = 120
            frames = []
            for t in range(T):
                f = bg.copy(); x0 = (3 * t * (c + 1)) % (S - 6); f[8:14, x0:x0 + 6] = 255; frames.append(f)
            if s == 'static': frames = [frames[0]] * T
            if s == 'shuffled': frames = [frames[j] for j in rng.permutation(T)]
            p = base/'videos'/rel; p.parent.mkdir(parents=True, exist_ok=True)
            wr = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*'mp4v'), 25, (S, S))
            for f in frames: wr.write(f[..., ::-1].copy())
            wr.release()
            lists.setdefault(s, []).append(f'{rel} {c + 1}' if s == 'train' else rel)
            meta.append(f'{rel},{s},{c},{fam},{home},{int(fam == home)}')
    for s, lines in lists.items():
        name = {'train': 'trainlist01.txt', 'test': 'testlist01.txt'}.get(s, f'testlist01_{s}.txt')
        (base/'splits'/name).write_text('\n'.join(lines) + '\n')
    (base/'meta.csv').write_text('\n'.join(meta) + '\n')


def test_evaluate_backbone_end_to_end_on_video_files(tmp_path):
    "The real dataset and backbone code paths: mp4 files -> build_dataset -> cnn4 -> every protocol, twice identically."
    datasets = pytest.importorskip('s2vc_repro.data.datasets')
    backbones = pytest.importorskip('s2vc_repro.backbones')
    _write_mini_benchmark(tmp_path)
    cfg = get_config('smoke', {'data.root': str(tmp_path), 'eval.retrieval_ks': (1, 5)})
    torch.manual_seed(0)
    bb = backbones.build_backbone(cfg.model.backbone, cfg.model.width)
    out = evaluate_backbone(cfg, bb, ('linear', 'retrieval', 'bias', 'finetune'), device='cpu', datasets=('synth-ucf',))
    assert {'synth-ucf/linear/top1', 'synth-ucf/retrieval/R@5', 'synth-ucf/bias/scene_share', 'synth-ucf/finetune/top1'} <= set(out)
    again = evaluate_backbone(cfg, bb, ('linear', 'retrieval', 'bias'), device='cpu', datasets=('synth-ucf',))
    assert all(again[k] == out[k] for k in again), {k: (out[k], again[k]) for k in again if again[k] != out[k]}
    # conflicting videos' families come from meta.csv matched by path: every conflicting video is off its home
    ds = datasets.build_dataset(cfg, 'conflicting', mode='uniform')
    fams = _split_families(ds, _rows(read_meta(tmp_path, 'synth-ucf')), 'conflicting')
    assert fams == [(r.label + 1) % 3 for r in ds.records]


# ---------------------------------------------------------------- a share of the labels (DSM Fig. 4)
from s2vc_repro.evaluate import label_subset, labelled_subset, labels_file, check_fraction

def test_label_subset_is_deterministic_stratified_and_nested():
    y = np.repeat(np.arange(5), [100, 40, 21, 7, 2])
    a = label_subset(y, 0.1, seed=3)
    assert np.array_equal(a, label_subset(y, 0.1, seed=3)) and not np.array_equal(a, label_subset(y, 0.1, seed=4))
    assert np.bincount(y[a]).tolist() == [10, 4, 2, 1, 1]  # round(10%) of every class, at least one
    assert np.bincount(y[label_subset(y, 0.01, seed=3)]).tolist() == [1] * 5
    assert set(label_subset(y, 0.01, seed=3)) <= set(a) <= set(label_subset(y, 0.5, seed=3))
    assert np.array_equal(label_subset(y, 1.0, seed=3), np.arange(len(y))) and np.array_equal(label_subset(y, 1, seed=9), np.arange(len(y)))
    keys = [f'c{c}/v{i:03d}.mp4' for i, c in enumerate(y)]  # the draw follows the keys, not the listing order
    p = np.random.default_rng(0).permutation(len(y))
    assert sorted(keys[p[i]] for i in label_subset(y[p], 0.1, 3, [keys[j] for j in p])) == sorted(keys[i] for i in label_subset(y, 0.1, 3, keys))

@pytest.mark.parametrize('bad', [0, 0.0, -0.5, 1.01, 100, float('nan'), float('inf'), '0.1', None, True])
def test_label_fraction_rejects_what_is_not_a_share(bad):
    with pytest.raises(ValueError, match=r'number in \(0, 1\]'): check_fraction(bad)
    with pytest.raises(ValueError, match=r'number in \(0, 1\]'): label_subset([0, 1, 1], bad)
    if bad is not None:  # None is evaluate_backbone's default: all the labels
        with pytest.raises(ValueError, match=r'number in \(0, 1\]'): evaluate_backbone(get_config('smoke'), Tiny(), ('finetune',), label_fraction=bad, build=lambda *a: [])

def test_label_fraction_only_for_linear_and_finetune():
    with pytest.raises(ValueError, match='linear and finetune'): evaluate_backbone(get_config('smoke'), Tiny(), ('retrieval',), label_fraction=0.1, build=lambda *a: [])

def test_labelled_subset_keeps_its_videos_and_reads_them_back(tmp_path):
    items = fake_items(30, n_classes=3, one_clip=True)
    sub, idx = labelled_subset(items, 0.2, seed=1, name='toy', subset_dir=tmp_path)
    f = labels_file(tmp_path, 'toy', 0.2, 1)
    assert f.name == 'labels-toy-0.2-seed1.txt' and len(f.read_text().splitlines()) == len(sub) == 6
    assert [it['label'] for it in sub] == [items[i]['label'] for i in idx] and sorted(set(it['label'] for it in sub)) == [0, 1, 2]
    f.write_text('0 0\n4 1\n')  # a kept list wins over a new draw
    assert labelled_subset(items, 0.2, seed=1, name='toy', subset_dir=tmp_path)[1].tolist() == [0, 4]

def test_label_fraction_is_its_own_evaluation_and_old_keys_stay():
    from s2vc_repro.papers import run_config
    from s2vc_repro.runs import eval_hash
    from s2vc_repro.notebook import paper_setup
    cfg = run_config('dsm/moco-c3d-ucf101', 'mini')
    assert eval_hash(cfg) == 'afc71fa124ca'  # the key of the cached finetune / linear evaluations of the mini MoCo run
    ds = {'datasets': ('synth-ucf',)}
    keys = {eval_hash(cfg, **ds), eval_hash(cfg, **ds, label_fraction=0.01), eval_hash(cfg, **ds, label_fraction=0.1)}
    assert len(keys) == 3
    q = [r for r in paper_setup('mini').requests('dsm-fig4') if r['row'] == 'MoCo' and r['seed'] == 0]
    assert [r['kwargs'] for r in q] == [{**ds, 'label_fraction': 0.01}, {**ds, 'label_fraction': 0.1}, ds]  # 100%: the plain finetune
