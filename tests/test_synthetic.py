"The synthetic benchmark: layout, distinct splits, determinism, resume, mp4 round trip, and honesty (scene vs motion)."
import hashlib
from dataclasses import replace
import numpy as np, pandas as pd, pytest
import decord
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from s2vc_repro.config import SynthCfg
from s2vc_repro.data.synthetic import (SPLITS, class_names, ensure_benchmark, frame_features, motion_features,
                                       plan_variant, render_planned, render_video, write_benchmark)

CFG = SynthCfg(n_train=160, n_test=96, n_train_transfer=32, n_test_transfer=16, frames=12, size=32, seed=3)
BALANCED = replace(CFG, rho=1 / CFG.n_families, n_train=160, n_test=96, n_train_transfer=8, n_test_transfer=8, seed=4)

def read(path, n=None):
    vr = decord.VideoReader(str(path))
    return vr.get_batch(list(range(n or len(vr)))).asnumpy()

def digest(x): return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()

@pytest.fixture(scope='module')
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp('synth')
    return out, write_benchmark(out, CFG, workers=2, progress=False)

@pytest.fixture(scope='module')
def balanced(tmp_path_factory):
    out = tmp_path_factory.mktemp('balanced')
    return write_benchmark(out, BALANCED, workers=2, variants=('ucf',), progress=False)['synth-ucf']

def load(root, subset):
    "Decoded videos and labels of one subset of a written dataset."
    meta = pd.read_csv(root/'meta.csv')
    m = meta[meta.subset == subset]
    return [read(root/'videos'/p) for p in m.path], m.label.to_numpy(), m

def frame_clf(videos, labels):
    X = np.stack([frame_features(v[len(v) // 2]) for v in videos])
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)).fit(X, labels)

def frame_acc(clf, videos, labels): return clf.score(np.stack([frame_features(v[len(v) // 2]) for v in videos]), labels)

# --- layout -------------------------------------------------------------------------------------------------

def test_dive_variant_has_one_scene_and_fine_motion_classes(bench):
    "synth-dive (the Diving-48 stand-in): every video in the one scene, 8 classes of direction x zig-zag, transfer-set sizes."
    _, paths = bench
    root = paths['synth-dive']
    meta = pd.read_csv(root/'meta.csv')
    assert (meta.family == 0).all() and (meta.home_family == 0).all() and meta.aligned.all()
    assert meta.subset.value_counts().to_dict() == {s: (CFG.n_train_transfer if s == 'train' else CFG.n_test_transfer) for s in SPLITS}
    names = (root/'splits'/'classInd.txt').read_text().split()[1::2]
    assert names == class_names(CFG.n_classes, 'dive') and names[0] == 'Pike240' and names[-1] == 'Twist300'
    assert sorted(meta.label.unique()) == list(range(CFG.n_classes))
    videos, labels, _ = load(root, 'test')
    steps = lambda v: np.stack([motion_features(v[t:t + 2]) for t in range(len(v) - 1)])
    down = np.array([np.median(steps(v), 0)[1] for v in videos])
    assert (down > 0).mean() > 0.9  # every class travels down the frame (image y grows)

def test_layout_and_split_files(bench):
    out, paths = bench
    assert set(paths) == {'synth-ucf', 'synth-hmdb', 'synth-dive'}
    for name, root in paths.items():
        if name == 'synth-dive': continue  # one scene, other classes: its own test below
        sp = root/'splits'
        assert (sp/'classInd.txt').read_text().splitlines() == [f'{i + 1} {n}' for i, n in enumerate(class_names())]
        meta = pd.read_csv(root/'meta.csv')
        assert list(meta.columns) == ['path', 'subset', 'label', 'family', 'home_family', 'aligned']
        ntr, nte = (CFG.n_train, CFG.n_test) if name == 'synth-ucf' else (CFG.n_train_transfer, CFG.n_test_transfer)
        assert meta.subset.value_counts().to_dict() == {s: (ntr if s == 'train' else nte) for s in SPLITS}
        train = [l.split() for l in (sp/'trainlist01.txt').read_text().splitlines()]
        assert len(train) == ntr and all(len(t) == 2 for t in train)
        m = meta.set_index('path')
        for p, lab in train:
            c = p.split('/')[0]
            assert p.startswith(f'{c}/v_{c}_g') and p.endswith('.mp4') and int(lab) == m.loc[p, 'label'] + 1
            assert class_names()[int(lab) - 1] == c
        for s, f in [('test', 'testlist01.txt')] + [(s, f'testlist01_{s}.txt') for s in SPLITS[2:]]:
            lines = (sp/f).read_text().splitlines()
            assert len(lines) == nte and all(len(l.split()) == 1 for l in lines)
            assert set(lines) == set(meta.path[meta.subset == s])
        assert all((root/'videos'/p).is_file() for p in meta.path)
        assert (meta.aligned == (meta.family == meta.home_family)).all()
        assert meta[meta.subset == 'aligned'].aligned.all() and not meta[meta.subset == 'conflicting'].aligned.any()
        assert (meta.home_family == meta.label * CFG.n_families // CFG.n_classes).all()  # neighbouring directions share a family

def test_class_balance_and_rho(bench):
    meta = pd.read_csv(bench[1]['synth-ucf']/'meta.csv')
    tr = meta[meta.subset == 'train']
    assert (tr.label.value_counts() == CFG.n_train // CFG.n_classes).all()
    assert 0.8 <= tr.aligned.mean() <= 0.98  # rho = 0.9 on 160 videos

# --- distinct, deterministic, readable ---------------------------------------------------------------------

def test_no_video_in_two_splits(bench):
    for root in bench[1].values():
        meta = pd.read_csv(root/'meta.csv')
        assert meta.path.is_unique
        hashes = [digest(read(root/'videos'/p, 2)) for p in meta.path]  # content, not just names
        assert len(set(hashes)) == len(hashes)
    rows = plan_variant(CFG, 'ucf') + plan_variant(CFG, 'hmdb')
    assert len({tuple(r['seed']) for r in rows}) == len(rows)

def test_determinism_rendered():
    rows = plan_variant(CFG, 'ucf')[::37]
    a = [digest(render_planned(r, CFG, 'ucf')) for r in rows]
    assert a == [digest(render_planned(r, CFG, 'ucf')) for r in rows]
    assert plan_variant(CFG, 'ucf') == plan_variant(CFG, 'ucf')
    other = replace(CFG, seed=CFG.seed + 1)
    assert [digest(render_planned(r, other, 'ucf')) for r in plan_variant(other, 'ucf')[::37]] != a
    x = render_video(3, 1, np.random.default_rng(11), CFG, 'hmdb')
    assert digest(x) == digest(render_video(3, 1, np.random.default_rng(11), CFG, 'hmdb'))

def test_determinism_written(bench, tmp_path):
    "A second generation (one process instead of two) decodes to byte-identical frames."
    small = replace(CFG, n_train=16, n_test=8, n_train_transfer=8, n_test_transfer=8)
    a = write_benchmark(tmp_path/'a', small, workers=2, variants=('ucf',), progress=False)['synth-ucf']
    b = write_benchmark(tmp_path/'b', small, workers=0, variants=('ucf',), progress=False)['synth-ucf']
    meta = pd.read_csv(a/'meta.csv')
    assert meta.equals(pd.read_csv(b/'meta.csv'))
    for p in meta.path: assert digest(read(a/'videos'/p)) == digest(read(b/'videos'/p))

def test_mp4_round_trip(bench):
    "decord reads every file with the right shape, and the frames survive mp4v compression."
    root = bench[1]['synth-ucf']
    rows = {r['path']: r for r in plan_variant(CFG, 'ucf')}
    psnr = []
    for p in list(rows)[::9]:
        x = render_planned(rows[p], CFG, 'ucf'); y = read(root/'videos'/p)
        assert y.shape == (CFG.frames, CFG.size, CFG.size, 3)
        psnr.append(10 * np.log10(255 ** 2 / np.mean((x.astype(float) - y) ** 2)))
    assert np.mean(psnr) > 24 and np.min(psnr) > 14, (np.mean(psnr), np.min(psnr))

def test_static_and_shuffled(bench):
    root = bench[1]['synth-ucf']
    rows = [r for r in plan_variant(CFG, 'ucf')]
    for r in rows:
        if r['subset'] == 'static':
            x = render_planned(r, CFG, 'ucf'); assert (x == x[:1]).all()
            y = read(root/'videos'/r['path']); assert np.abs(np.diff(y.astype(int), axis=0)).mean() < 2
    sh = [r for r in rows if r['subset'] == 'shuffled'][:5]
    for r in sh:  # the same frames as the unshuffled video of the same seed, in another order
        x = render_planned(r, CFG, 'ucf'); base = render_planned({**r, 'subset': 'test'}, CFG, 'ucf')
        assert sorted(map(digest, x)) == sorted(map(digest, base)) and digest(x) != digest(base)

# --- resume and the done marker -----------------------------------------------------------------------------

def test_resume_and_done_marker(tmp_path):
    small = replace(CFG, n_train=16, n_test=8, n_train_transfer=8, n_test_transfer=8)
    root = write_benchmark(tmp_path, small, workers=0, variants=('ucf',), progress=False)['synth-ucf']
    meta = pd.read_csv(root/'meta.csv')
    keep, gone, bad = (root/'videos'/p for p in meta.path[:3])
    ref = {p: digest(read(p)) for p in (gone, bad)}
    t_keep = keep.stat().st_mtime_ns
    # a finished benchmark with the same config is left alone
    ensure_benchmark(tmp_path, small, workers=0, variants=('ucf',), progress=False)
    assert keep.stat().st_mtime_ns == t_keep
    # an interrupted one: the marker is missing, one video is gone, one is truncated garbage
    (root/'done').unlink(); gone.unlink(); bad.write_bytes(b'not a video')
    write_benchmark(tmp_path, small, workers=0, variants=('ucf',), progress=False)
    assert keep.stat().st_mtime_ns == t_keep  # readable videos are skipped
    assert {p: digest(read(p)) for p in (gone, bad)} == ref  # the missing ones come back identical
    assert (root/'done').is_file()
    assert not list(root.rglob('*.part*'))
    # another config regenerates from scratch
    other = replace(small, n_train=24)
    write_benchmark(tmp_path, other, workers=0, variants=('ucf',), progress=False)
    assert (pd.read_csv(root/'meta.csv').subset == 'train').sum() == 24

def test_errors():
    with pytest.raises(ValueError, match='ucf, hmdb'): render_video(0, 0, np.random.default_rng(0), CFG, 'kinetics')
    with pytest.raises(ValueError, match='0..7'): render_video(8, 0, np.random.default_rng(0), CFG)
    with pytest.raises(ValueError, match='0..3'): render_video(0, 4, np.random.default_rng(0), CFG)

# --- honesty: the class is in the motion, the scene is only a (biased) hint --------------------------------

def test_single_frame_is_at_chance_on_balanced_scenes(balanced):
    "With rho = 1/n_families, a single frame carries no class information: a frame classifier stays near chance."
    v, y, _ = load(balanced, 'train'); vt, yt, _ = load(balanced, 'test')
    acc = frame_acc(frame_clf(v, y), vt, yt)
    assert acc < 0.25, acc  # chance 0.125

def test_motion_cue_is_far_above_chance(balanced, bench):
    "The displacement of the light object decides the class, whatever the scene, the shake and the distractor."
    v, y, _ = load(balanced, 'train')
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(np.stack([motion_features(x) for x in v]), y)
    for root, s in [(balanced, 'test'), (bench[1]['synth-ucf'], 'conflicting'), (bench[1]['synth-hmdb'], 'test')]:
        vt, yt, _ = load(root, s)
        acc = clf.score(np.stack([motion_features(x) for x in vt]), yt)
        assert acc > 0.8, (root.name, s, acc)
    vs, ys, _ = load(bench[1]['synth-ucf'], 'static')  # no motion, no class
    assert clf.score(np.stack([motion_features(x) for x in vs]), ys) < 0.3

def test_scene_bias_is_visible(bench):
    "Trained on the biased split, a single-frame classifier is right on aligned videos and wrong on conflicting ones."
    root = bench[1]['synth-ucf']
    v, y, _ = load(root, 'train')
    clf = frame_clf(v, y)
    acc = {s: frame_acc(clf, *load(root, s)[:2]) for s in ('aligned', 'conflicting', 'test')}
    assert acc['aligned'] > acc['conflicting'] + 0.2, acc
    assert acc['conflicting'] < 0.15, acc
