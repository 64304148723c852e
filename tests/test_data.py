"Video reading, clip samplers, split-file parsers and bad-file handling of `s2vc_repro.data`."
import json, shutil, warnings
from pathlib import Path
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from s2vc_repro.config import get_config
from s2vc_repro.data.video import (VideoReadError, BadVideoWarning, clip_indices, random_clip, uniform_clips, sliding_windows,
                                   two_clips, read_frames, video_length, write_video, moving_square, probe_video)
from s2vc_repro.data.datasets import (VideoRecord, VideoDataset, SplitFileError, TooManyBadVideos, parse_ucf101, parse_hmdb51,
                                      parse_kinetics, parse_kinetics200, parse_diving48, build_dataset, read_meta, collate_clips)

CASES = [(n, T, s) for n in (1, 5, 15, 16, 17, 31, 32, 100, 301) for T in (1, 8, 16) for s in (1, 2, 4)]

@pytest.fixture(scope='module')
def good(tmp_path_factory):
    "A readable 24-frame mp4 (48x64) written with OpenCV 'mp4v'."
    return write_video(tmp_path_factory.mktemp('v')/'good.mp4', moving_square(T=24))

# ---------------------------------------------------------------- samplers
@pytest.mark.parametrize('n,T,s', CASES)
def test_samplers_shapes_ranges(n, T, s):
    span = (T - 1) * s + 1
    for idx in [random_clip(n, T, s, 0)[None], two_clips(n, T, s, 0), uniform_clips(n, T, s, 5), sliding_windows(n, T, s)]:
        assert idx.ndim == 2 and idx.shape[1] == T and np.issubdtype(idx.dtype, np.integer)
        assert idx.min() >= 0 and idx.max() < n
        # consecutive sampled frames are `s` apart, modulo the video length (looping)
        assert ((np.diff(idx, axis=1) - s) % n == 0).all()
        if n >= span: assert (np.diff(idx, axis=1) == s).all()   # long enough: no wrap
    assert uniform_clips(n, T, s, 5).shape == (5, T)
    assert two_clips(n, T, s, 0).shape == (2, T)
    w = sliding_windows(n, T, s)
    if n > span:   # windows cover the whole video, half-overlapping
        assert w[0, 0] == 0 and w[-1, -1] == n - 1
        hops = np.diff(w[:, 0])
        assert (hops[:-1] == max(span // 2, 1)).all() and 0 < hops[-1] <= max(span // 2, 1)

@pytest.mark.parametrize('n,T,s', CASES)
def test_samplers_deterministic(n, T, s):
    for f in (random_clip, two_clips):
        assert (f(n, T, s, 3) == f(n, T, s, 3)).all()
        assert (f(n, T, s, np.random.default_rng(4)) == f(n, T, s, np.random.default_rng(4))).all()
    assert (uniform_clips(n, T, s, 3) == uniform_clips(n, T, s, 3)).all()

def test_two_clips_differ_when_possible():
    for n, T, s in [(17, 16, 1), (40, 16, 2), (100, 8, 4), (5, 8, 1)]:
        for seed in range(50): assert two_clips(n, T, s, seed)[0, 0] != two_clips(n, T, s, seed)[1, 0]
    assert (two_clips(16, 16, 1, 0)[0] == two_clips(16, 16, 1, 0)[1]).all()  # exactly one possible clip

def test_random_clip_covers_all_starts():
    starts = {int(random_clip(20, 4, 2, seed)[0]) for seed in range(400)}
    assert starts == set(range(20 - 7 + 1))

def test_looping_short_video():
    assert clip_indices(0, 5, 12).tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    assert sliding_windows(3, 4, 2).tolist() == [[0, 2, 1, 0]]

# ---------------------------------------------------------------- reading
def test_read_frames_and_loop(good):
    assert video_length(good) == 24
    x = read_frames(good, clip_indices(0, 24, 30))
    assert x.shape == (30, 48, 64, 3) and x.dtype == torch.uint8
    assert torch.equal(x[24], x[0]) and torch.equal(x[29], x[5])   # looped frames are the same frames
    assert read_frames(good, [3, 1, 3], size=24).shape == (3, 24, 32, 3)
    assert read_frames(good, [0], size=(16, 20)).shape == (1, 16, 20, 3)
    f = read_frames(good, np.arange(24))   # the square moves: frames differ
    assert not torch.equal(f[0], f[12])

def _bad_files(d, good):
    data = Path(good).read_bytes()
    (d/'truncated.mp4').write_bytes(data[:len(data) // 2])
    (d/'empty.mp4').write_bytes(b'')
    return [d/'truncated.mp4', d/'empty.mp4', d/'missing.mp4']

def test_bad_files_raise(tmp_path, good):
    for p, msg in zip(_bad_files(tmp_path, good), ['cannot open', '0 bytes', 'not found']):
        with pytest.raises(VideoReadError, match=msg): probe_video(p)
        with pytest.raises(VideoReadError, match=p.name): read_frames(p, [0])

# ---------------------------------------------------------------- datasets and bad files
def _records(d, good, n_good):
    recs = []
    for k in range(n_good):
        p = d/f'g{k}.mp4'; shutil.copy(good, p); recs.append(VideoRecord(str(p), k % 3))
    return recs

def test_dataset_skips_bad_within_fraction(tmp_path, good):
    recs = _records(tmp_path, good, 9) + [VideoRecord(str(p), 0) for p in _bad_files(tmp_path, good)]
    with pytest.warns(BadVideoWarning, match='3 of 12'):
        ds = VideoDataset(recs, 'train', frames=8, size=24, max_bad_fraction=0.3)
    assert len(ds) == 9 and {Path(p).name for p, _ in ds.bad} == {'truncated.mp4', 'empty.mp4', 'missing.mp4'}
    with pytest.raises(TooManyBadVideos) as e: VideoDataset(recs, 'train', frames=8, max_bad_fraction=0.2)
    msg = str(e.value)
    assert '3 of 12' in msg and 'truncated.mp4' in msg and 'empty.mp4' in msg and 'missing.mp4' in msg

def test_decode_failure_in_dataloader_workers(tmp_path, good):
    recs = _records(tmp_path, good, 6)
    ds = VideoDataset(recs, 'pair', frames=8, size=24, max_bad_fraction=0.0)
    # break two files after construction: the probe passed, decoding fails inside the workers
    Path(recs[2].path).write_bytes(Path(good).read_bytes()[:300]); Path(recs[5].path).write_bytes(b'')
    dl = DataLoader(ds, batch_size=2, num_workers=2, shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        batches = list(dl)
    idx = torch.cat([b['index'] for b in batches]).tolist()
    assert idx == [0, 1, 3, 3, 4, 0]          # item 2 -> next readable (3); item 5 -> wraps to 0
    assert all(b['video'].shape[1:] == (2, 3, 8, 24, 24) for b in batches)
    with pytest.warns(BadVideoWarning, match='g2.mp4'): ds[2]
    with warnings.catch_warnings():
        warnings.simplefilter('error')        # warned once per file: no second warning
        assert ds[2]['index'] == 3

def test_modes_and_collate(tmp_path, good):
    recs = _records(tmp_path, good, 2)
    for mode, shape in [('train', (3, 8, 24, 24)), ('pair', (2, 3, 8, 24, 24)), ('uniform', (3, 3, 8, 24, 24)), ('windows', (5, 3, 8, 24, 24))]:
        ds = VideoDataset(recs, mode, frames=8, stride=1, n_clips=3, size=24)
        it = ds[1]
        assert tuple(it['video'].shape) == shape and it['video'].dtype == torch.uint8 and it['label'] == 1 and it['index'] == 1
    b = next(iter(DataLoader(ds, batch_size=2, collate_fn=collate_clips)))
    assert b['video'].shape[0] == 10 and b['owner'].tolist() == [0] * 5 + [1] * 5
    with pytest.raises(ValueError, match='valid modes'): VideoDataset(recs, 'clips')

def test_epoch_seeding(tmp_path, good):
    ds = VideoDataset(_records(tmp_path, good, 1), 'train', frames=4, stride=2)
    a = [ds[0]['video'] for _ in range(2)]
    assert torch.equal(*a)
    clips = set()
    for e in range(8): ds.set_epoch(e); clips.add(ds[0]['video'].sum().item())
    assert len(clips) > 1

def test_cache_serves_the_decoded_frames(tmp_path, good):
    "A caching dataset gives the same clips as decoding, every epoch and mode, and decodes each file once."
    recs = _records(tmp_path, good, 3)
    for mode in ('train', 'pair', 'uniform'):
        plain, cached = (VideoDataset(recs, mode, frames=6, stride=2, n_clips=2, size=24, cache=c) for c in (False, True))
        for e in range(3):
            plain.set_epoch(e); cached.set_epoch(e)
            for i in range(3): assert torch.equal(plain[i]['video'], cached[i]['video'])
        assert set(cached._frames) == {r.path for r in recs}
    Path(recs[0].path).write_bytes(b'')  # broken on disk after its first read: the cached dataset still serves it
    assert cached[0]['index'] == 0
    with pytest.warns(BadVideoWarning): assert plain[0]['index'] == 1  # decoding again falls back to the next video

# ---------------------------------------------------------------- split files
def test_ucf101_format(tmp_path):
    s = tmp_path/'splits'; s.mkdir()
    (s/'classInd.txt').write_text('1 ApplyEyeMakeup\n2 ApplyLipstick\n3 HandstandPushups\n')
    for k in (1, 2, 3):
        (s/f'trainlist0{k}.txt').write_text('ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\nHandstandPushups/v_HandStandPushups_g08_c01.avi 3\r\n')
        (s/f'testlist0{k}.txt').write_text('ApplyLipstick/v_ApplyLipstick_g01_c01.avi\nHandstandPushups/v_HandStandPushups_g01_c01.avi\n')
    (s/'testlist01_conflicting.txt').write_text('ApplyLipstick/v_ApplyLipstick_g02_c01.avi\n')
    v = tmp_path/'videos'
    (v/'ApplyLipstick').mkdir(parents=True); (v/'ApplyLipstick/v_ApplyLipstick_g01_c01.mp4').write_bytes(b'x')  # converted to mp4
    for k in (1, 2, 3):
        tr, classes = parse_ucf101(s, v, k, 'train')
        assert classes == ['ApplyEyeMakeup', 'ApplyLipstick', 'HandstandPushups'] and [r.label for r in tr] == [0, 2]
        te, _ = parse_ucf101(s, v, k, 'test')
        assert [r.label for r in te] == [1, 2]
    assert te[0].path.endswith('v_ApplyLipstick_g01_c01.mp4') and te[1].path.endswith('.avi')
    assert [r.label for r in parse_ucf101(s, v, 1, 'conflicting')[0]] == [1]
    with pytest.raises(SplitFileError) as e: parse_ucf101(s, v, 1, 'static')
    assert isinstance(e.value, FileNotFoundError) and 'testlist01_static.txt' in str(e.value) and str(s) in str(e.value)
    (s/'classInd.txt').unlink()
    with pytest.raises(FileNotFoundError, match='classInd.txt'): parse_ucf101(s, v, 1, 'train')

def test_hmdb51_format(tmp_path):
    s = tmp_path/'splits'; s.mkdir()
    for k in (1, 2, 3):
        (s/f'wave_test_split{k}.txt').write_text('w1.avi 1 \nw2.avi 2 \nw3.avi 0 \n')
        (s/f'brush_hair_test_split{k}.txt').write_text('b1.avi 2 \nb2.avi 1 \nb3.avi 1 \n')
    tr, classes = parse_hmdb51(s, tmp_path/'videos', 2, 'train')
    assert classes == ['brush_hair', 'wave']
    assert [(Path(r.path).parent.name, Path(r.path).name, r.label) for r in tr] == [('brush_hair', 'b2.avi', 0), ('brush_hair', 'b3.avi', 0), ('wave', 'w1.avi', 1)]
    assert [Path(r.path).name for r in parse_hmdb51(s, tmp_path/'videos', 3, 'test')[0]] == ['b1.avi', 'w2.avi']
    with pytest.raises(SplitFileError, match='_test_split1.txt'): parse_hmdb51(tmp_path/'nowhere', tmp_path, 1)

def test_kinetics_formats(tmp_path):
    s = tmp_path/'splits'; s.mkdir(); v = tmp_path/'videos'
    hdr = 'label,youtube_id,time_start,time_end,split,is_cc\n'
    (s/'train.csv').write_text(hdr + 'abseiling,-3B32lodo2M,59,69,train,0\nair drumming,--nQbRBEz2s,104,114,train,0\nzumba,x_y,0,10,train,0\n')
    (s/'validate.csv').write_text(hdr + 'zumba,val1,3,13,val,0\nair drumming,val2,1,11,val,0\n')
    (v/'abseiling').mkdir(parents=True); (v/'abseiling/-3B32lodo2M_000059_000069.mp4').write_bytes(b'x')
    (v/'air_drumming').mkdir(); (v/'air_drumming/--nQbRBEz2s_000104_000114.mp4').write_bytes(b'x')
    for n in ['x_y_000000_000010.mp4', 'val1_000003_000013.mp4', 'val2_000001_000011.mp4']: (v/n).write_bytes(b'x')
    tr, classes = parse_kinetics(s, v, 'train')
    assert classes == ['abseiling', 'air drumming', 'zumba'] and [r.label for r in tr] == [0, 1, 2]
    assert [Path(r.path).name for r in tr] == ['-3B32lodo2M_000059_000069.mp4', '--nQbRBEz2s_000104_000114.mp4', 'x_y_000000_000010.mp4']
    assert [r.label for r in parse_kinetics(s, v, 'test')[0]] == [2, 1]
    (s/'train_ytid_list.txt').write_text('-3B32lodo2M\nx_y\n'); (s/'val_ytid_list.txt').write_text('val1\nval2\n')
    tr, classes = parse_kinetics200(s, v, 'train')
    assert classes == ['abseiling', 'zumba'] and [r.label for r in tr] == [0, 1]
    te, _ = parse_kinetics200(s, v, 'test')
    assert [(Path(r.path).name, r.label) for r in te] == [('val1_000003_000013.mp4', 1)]   # val2's class is not in K200
    with pytest.raises(SplitFileError, match='validate.csv'): parse_kinetics(tmp_path, v, 'test')
    with pytest.raises(SplitFileError, match='train_ytid_list.txt'): parse_kinetics200(tmp_path, v, 'train')

def test_diving48_format(tmp_path):
    (tmp_path/'Diving48_vocab.json').write_text(json.dumps([['Back', '15som', 'NoTwis', 'PIKE']] * 3))
    (tmp_path/'Diving48_V2_train.json').write_text(json.dumps([{'vid_name': 'a_1', 'label': 2, 'start_frame': 0, 'end_frame': 50}]))
    (tmp_path/'Diving48_V2_test.json').write_text(json.dumps([{'vid_name': 'b_2', 'label': 0, 'start_frame': 3, 'end_frame': 40}]))
    (r,), classes = parse_diving48(tmp_path, tmp_path/'videos', 'train')
    assert len(classes) == 3 and (Path(r.path).name, r.label, r.start, r.end) == ('a_1.mp4', 2, 0, 50)
    (r,), _ = parse_diving48(tmp_path, tmp_path/'videos', 'test')
    assert (r.start, r.end) == (3, 40)
    (tmp_path/'Diving48_V2_test.json').unlink()
    with pytest.raises(SplitFileError, match='Diving48_V2_test.json'): parse_diving48(tmp_path, tmp_path, 'test')

def test_frame_range_is_respected(tmp_path, good):
    ds = VideoDataset([VideoRecord(str(good), 0, start=10, end=14)], 'windows', frames=4, size=None, square=False)
    full = read_frames(good, np.arange(10, 14))
    assert torch.equal(ds[0]['video'][0].permute(1, 2, 3, 0), full)

# ---------------------------------------------------------------- build_dataset over the folder layouts
def test_build_dataset_all_layouts(tmp_path, good):
    root = tmp_path
    def put(rel): p = root/rel; p.parent.mkdir(parents=True, exist_ok=True); shutil.copy(good, p)
    # UCF101-format synthetic set with the extra evaluation lists
    for name in ('synth-ucf', 'ucf101'):
        s = root/name/'splits'; s.mkdir(parents=True)
        (s/'classInd.txt').write_text('1 a\n2 b\n')
        (s/'trainlist01.txt').write_text('a/a0.mp4 1\nb/b0.mp4 2\n'); (s/'testlist01.txt').write_text('a/a1.mp4\nb/b1.mp4\n')
        for sub in ('aligned', 'conflicting', 'static', 'shuffled'): (s/f'testlist01_{sub}.txt').write_text('b/b1.mp4\n')
        for f in ('a/a0.mp4', 'b/b0.mp4', 'a/a1.mp4', 'b/b1.mp4'): put(f'{name}/videos/{f}')
    (root/'synth-ucf/meta.csv').write_text('path,subset,label,family,home_family,aligned\nb/b1.mp4,aligned,1,1,1,True\n')
    s = root/'hmdb51/splits'; s.mkdir(parents=True)
    (s/'run_test_split1.txt').write_text('r0.avi 1\nr1.avi 2\n'); put('hmdb51/videos/run/r0.avi'); put('hmdb51/videos/run/r1.avi')
    s = root/'k400/splits'; s.mkdir(parents=True)
    (s/'train.csv').write_text('label,youtube_id,time_start,time_end,split\nrun,aa,0,10,train\nsit,bb,0,10,train\n')
    (s/'validate.csv').write_text('label,youtube_id,time_start,time_end,split\nsit,cc,0,10,val\n')
    for f in ('run/aa_000000_000010.mp4', 'sit/bb_000000_000010.mp4', 'sit/cc_000000_000010.mp4'): put(f'k400/videos/{f}')
    s = root/'k200/splits'; s.mkdir(parents=True)   # id lists only: CSVs and videos come from k400
    (s/'train_ytid_list.txt').write_text('bb\n'); (s/'val_ytid_list.txt').write_text('cc\n')
    s = root/'diving48/splits'; s.mkdir(parents=True)
    (s/'Diving48_vocab.json').write_text(json.dumps([['x'], ['y']]))
    (s/'Diving48_V2_train.json').write_text(json.dumps([{'vid_name': 'd0', 'label': 1, 'start_frame': 0, 'end_frame': 24}]))
    (s/'Diving48_V2_test.json').write_text(json.dumps([{'vid_name': 'd1', 'label': 0, 'start_frame': 0, 'end_frame': 24}]))
    put('diving48/videos/d0.mp4'); put('diving48/videos/d1.mp4')

    cfg = get_config('smoke', {'data.root': str(root)})
    T, r = cfg.data.frames, cfg.data.resize
    expect = {'synth-ucf': 2, 'ucf101': 2, 'hmdb51': 1, 'k400': 2, 'k200': 1, 'diving48': 2}
    for name, n_cls in expect.items():
        for subset in ('train', 'test'):
            ds = build_dataset(cfg, subset, name=name)
            assert ds.n_classes == n_cls, name
            it = ds[0]
            want = (3, T, r, r) if subset == 'train' else (cfg.eval.test_clips, 3, T, r, r)
            assert tuple(it['video'].shape) == want, (name, subset)
    for sub in ('aligned', 'conflicting', 'static', 'shuffled'):
        assert build_dataset(cfg, sub, name='synth-ucf')[0]['label'] == 1
    assert build_dataset(cfg, 'train', mode='pair', name='synth-ucf')[0]['video'].shape[0] == 2
    assert build_dataset(cfg.replace(**{'eval.test_mode': 'windows'}), 'test', name='ucf101')[0]['video'].shape[1:] == (3, T, r, r)
    with pytest.raises(ValueError, match='valid subsets'): build_dataset(cfg, 'aligned', name='ucf101')
    with pytest.raises(SplitFileError) as e: build_dataset(cfg, 'train', name='synth-hmdb')
    assert str(root/'synth-hmdb'/'splits') in str(e.value) and 'classInd.txt' in str(e.value)
    m = read_meta(root, 'synth-ucf')
    assert list(m.columns) == ['path', 'subset', 'label', 'family', 'home_family', 'aligned'] and len(m) == 1
    assert read_meta(root, 'ucf101') is None
