"`s2vc-repro data prepare` on fabricated official archives: the five datasets' chains, resumes, bad input, the paper path."
import errno, functools, hashlib, http.server, io, json, os, subprocess, sys, threading
from pathlib import Path
import pytest

from s2vc_repro.cli import main
from s2vc_repro.data import prepare as P
from s2vc_repro.data.prepare import sha256sum
from s2vc_repro.data.fabricate import fabricate
from s2vc_repro.data.datasets import load_split

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(classes=2, frames=6)
quiet = lambda s: None

def _prep(name, tmp, sums, **kw):
    return P.prepare(name, tmp/'data', from_dir=tmp/'official', size=32, jobs=2, sha256=sums, progress=False, log=quiet, **kw)

# ---------------------------------------------------------------- a mirror on localhost
class _Handler(http.server.SimpleHTTPRequestHandler):
    "Files with `Range: bytes=N-`; `cut` bytes of a file are dropped mid-body (a broken connection)."
    def log_message(self, *a): pass
    def send_head(self):
        path = self.translate_path(self.path)
        if not os.path.isfile(path): return super().send_head()
        data, start = Path(path).read_bytes(), 0
        r = self.headers.get('Range')
        if r: start = int(r.split('=')[1].split('-')[0]); self.server.ranges.append((Path(path).name, start))
        self.send_response(206 if r else 200)
        self.send_header('Content-Length', str(len(data) - start)); self.end_headers()
        body = data[start:]
        return io.BytesIO(body[:len(body) - self.server.cut.pop(Path(path).name, 0)])

@pytest.fixture
def mirror(tmp_path):
    "(folder served, base URL, server) of an HTTP server on 127.0.0.1."
    d = tmp_path/'mirror'; d.mkdir()
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Handler, directory=str(d)))
    srv.ranges, srv.cut = [], {}
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield d, f'http://127.0.0.1:{srv.server_address[1]}/', srv
    srv.shutdown(); srv.server_close()

# ---------------------------------------------------------------- the five chains
@pytest.mark.parametrize('name,rar', [('ucf101', 4), ('ucf101', 5), ('hmdb51', 4), ('hmdb51', 5), ('k400', 4), ('k200', 4), ('diving48', 4)])
def test_prepare_chain(tmp_path, name, rar):
    sums = fabricate(name, tmp_path/'official', rar=rar, **SMALL)
    rep = _prep(name, tmp_path, sums)
    v = rep['verify']
    assert v['ok'] and v['n_missing'] == 0 and v['n_unreadable'] == 0
    assert json.loads((tmp_path/'data'/name/'prepared.json').read_text())['verify']['ok']
    recs, classes = load_split(tmp_path/'data', name, 'train', 1)
    assert len(classes) == 2 and recs and all(r.path.endswith('.mp4') and Path(r.path).is_file() for r in recs)
    assert all('/videos/' in r.path for r in recs)  # the resized copies, not the raw files
    if name in ('ucf101', 'hmdb51'):
        assert {k: s['videos'] for k, s in v['splits'].items() if k.endswith('1')} == ({'train1': 4, 'test1': 2} if name == 'ucf101' else {'train1': 4, 'test1': 2})
        assert set(v['splits']) == {f'{s}{k}' for s in ('train', 'test') for k in (1, 2, 3)}
    if name in ('k400', 'k200'):  # the clip missing from the video parts is reported, not listed
        assert len(rep['lists']['missing_ids']['train']) == 1 and rep['lists']['with_video']['train'] == rep['lists']['listed']['train'] - 1
    if name == 'k200': assert rep['lists']['ids_not_in_csv'] == {'train': 1, 'test': 1}
    assert rep['resize']['resized'] == v['videos'] and not rep['resize']['failed']
    # a rerun redoes nothing
    again = _prep(name, tmp_path, sums)
    assert again['resize']['resized'] == 0 and again['resize']['skipped'] == v['videos']
    assert all(x.get('skipped') for x in again['extract']['archives'].values()) and again['fetch']['kept'] and not again['fetch']['linked']

def test_hmdb_nested_rar_layout(tmp_path):
    sums = fabricate('hmdb51', tmp_path/'official', **SMALL)
    _prep('hmdb51', tmp_path, sums, steps=('fetch', 'extract'))
    ddir = tmp_path/'data'/'hmdb51'
    assert sorted(p.name for p in (ddir/'raw'/'hmdb51_org').glob('*.rar')) == ['brush_hair.rar', 'cartwheel.rar']
    assert sorted(p.parent.name for p in (ddir/'raw'/'videos').rglob('*.avi')) == ['brush_hair'] * 3 + ['cartwheel'] * 3

def test_ucf_resized_short_side(tmp_path):
    from s2vc_repro.data.video import probe_video
    sums = fabricate('ucf101', tmp_path/'official', classes=2, frames=6, hw=(60, 80))
    _prep('ucf101', tmp_path, sums)
    n, h, w = probe_video(next((tmp_path/'data'/'ucf101'/'videos').rglob('*.mp4')))
    assert (n, h, w) == (6, 32, 42)

# ---------------------------------------------------------------- fetch: resume, checksum, truncation, disk full
def test_fetch_resumes_interrupted_download(tmp_path, mirror):
    d, base, srv = mirror
    sums = fabricate('ucf101', d, **SMALL)
    dl = tmp_path/'data'/'ucf101'/'downloads'; dl.mkdir(parents=True)
    blob = (d/'UCF101.rar').read_bytes()
    (dl/'UCF101.rar.part').write_bytes(blob[:len(blob) // 3])  # an interrupted download
    urls = {f: base + f for f in sums}
    rep = P.prepare('ucf101', tmp_path/'data', steps=('fetch',), urls=urls, sha256=sums, progress=False, log=quiet)
    assert sorted(rep['fetch']['downloaded']) == sorted(sums)
    assert ('UCF101.rar', len(blob) // 3) in srv.ranges  # only the rest was asked for
    assert (dl/'UCF101.rar').read_bytes() == blob and not (dl/'UCF101.rar.part').exists()

def test_fetch_broken_connection_then_resume(tmp_path, mirror):
    d, base, srv = mirror
    sums = fabricate('diving48', d, **SMALL)
    srv.cut['Diving48_rgb.tar.gz'] = 1000  # the connection drops 1000 bytes before the end
    urls = {f: base + f for f in sums}
    with pytest.raises(P.PrepareError, match='stopped at .* bytes; rerun to continue'):
        P.prepare('diving48', tmp_path/'data', steps=('fetch',), urls=urls, sha256=sums, progress=False, log=quiet)
    part = tmp_path/'data'/'diving48'/'downloads'/'Diving48_rgb.tar.gz.part'
    assert part.stat().st_size == (d/'Diving48_rgb.tar.gz').stat().st_size - 1000
    P.prepare('diving48', tmp_path/'data', steps=('fetch',), urls=urls, sha256=sums, progress=False, log=quiet)
    assert ('Diving48_rgb.tar.gz', part.stat().st_size if part.exists() else (d/'Diving48_rgb.tar.gz').stat().st_size - 1000) in srv.ranges

def test_checksum_mismatch(tmp_path, mirror):
    d, base, srv = mirror
    sums = fabricate('ucf101', d, **SMALL)
    bad = dict(sums, **{'UCF101.rar': hashlib.sha256(b'other').hexdigest()})
    urls = {f: base + f for f in sums}
    with pytest.raises(P.PrepareError, match=r"checksum mismatch for '.*UCF101.rar'.*moved to .*UCF101.rar.bad"):
        P.prepare('ucf101', tmp_path/'data', steps=('fetch',), urls=urls, sha256=bad, progress=False, log=quiet)
    dl = tmp_path/'data'/'ucf101'/'downloads'
    assert (dl/'UCF101.rar.bad').exists() and not (dl/'UCF101.rar').exists()
    # the published checksum (no override) rejects a fabricated copy in --from: the user's file is left alone
    with pytest.raises(P.PrepareError, match=r"checksum mismatch for '.*UCF101.rar'.*left as it is.*--sha256 UCF101.rar=skip"):
        P.prepare('ucf101', tmp_path/'data2', from_dir=d, steps=('fetch',), progress=False, log=quiet)
    assert sha256sum(d/'UCF101.rar') == sums['UCF101.rar'] and not (tmp_path/'data2'/'ucf101'/'downloads'/'UCF101.rar').exists()
    rep = P.prepare('ucf101', tmp_path/'data2', from_dir=d, steps=('fetch',), sha256={'UCF101.rar': 'skip', 'UCF101TrainTestSplits-RecognitionTask.zip': 'skip'}, progress=False, log=quiet)
    assert sorted(rep['fetch']['linked']) == sorted(sums)

def test_unreachable_source_says_what_to_do(tmp_path):
    with pytest.raises(P.PrepareError, match=r"cannot fetch 'Diving48_rgb.tar.gz'.*--from DIR.*--url Diving48_rgb.tar.gz=URL"):
        P.prepare('diving48', tmp_path/'data', steps=('fetch',), urls={'Diving48_rgb.tar.gz': 'http://127.0.0.1:9/x.tar.gz'}, progress=False, log=quiet)
    with pytest.raises(P.PrepareError, match="unknown files.*UCF101.rar"):
        P.prepare('ucf101', tmp_path/'data', steps=('fetch',), urls={'ucf.rar': 'http://x'}, progress=False, log=quiet)

def test_disk_full_during_download_keeps_part(tmp_path, mirror, monkeypatch):
    d, base, srv = mirror
    sums = fabricate('diving48', d, **SMALL)
    urls = {f: base + f for f in sums}
    real_open = open
    class Full:
        def __init__(self, f): self.f, self.n = f, 0
        def __enter__(self): return self
        def __exit__(self, *a): self.f.close()
        def write(self, b):  # the disk fills after 2001 bytes
            room = 2001 - self.n
            self.f.write(b[:room]); self.n += min(room, len(b))
            if len(b) > room: raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(P, 'open', lambda p, m='r', *a, **k: Full(real_open(p, m)) if 'b' in m and 'a' in m or m == 'wb' else real_open(p, m, *a, **k), raising=False)
    with pytest.raises(P.PrepareError, match=r"disk full while writing '.*Diving48_rgb.tar.gz.part'.*rerun the same command"):
        P.prepare('diving48', tmp_path/'data', steps=('fetch',), urls=urls, sha256=sums, progress=False, log=quiet)
    part = tmp_path/'data'/'diving48'/'downloads'/'Diving48_rgb.tar.gz.part'
    assert part.stat().st_size == 2001
    monkeypatch.undo()
    P.prepare('diving48', tmp_path/'data', steps=('fetch',), urls=urls, sha256=sums, progress=False, log=quiet)
    assert ('Diving48_rgb.tar.gz', 2001) in srv.ranges and not part.exists()

# ---------------------------------------------------------------- extract: damaged archives
def test_truncated_rar_without_checksum(tmp_path):
    sums = fabricate('ucf101', tmp_path/'official', **SMALL)
    b = (tmp_path/'official'/'UCF101.rar').read_bytes()
    (tmp_path/'official'/'UCF101.rar').write_bytes(b[:len(b) // 2])
    sums = {f: 'skip' for f in sums}
    with pytest.raises(P.PrepareError, match=r"cannot extract '.*UCF101.rar' \(rar4\).*damaged or incomplete: delete it and rerun"):
        _prep('ucf101', tmp_path, sums)
    raw = tmp_path/'data'/'ucf101'/'raw'
    assert not (raw/'UCF-101').exists() and not list(raw.glob('.partial-*'))  # nothing half-extracted
    assert (raw/'.extracted').is_dir() is False or not any('UCF101.rar' in p.name for p in (raw/'.extracted').iterdir())

def test_damaged_rar_data_is_caught_by_crc(tmp_path):
    sums = fabricate('hmdb51', tmp_path/'official', **SMALL)
    b = bytearray((tmp_path/'official'/'hmdb51_org.rar').read_bytes()); b[len(b) // 2] ^= 0xFF
    (tmp_path/'official'/'hmdb51_org.rar').write_bytes(bytes(b))
    with pytest.raises(P.PrepareError, match='damaged'):
        _prep('hmdb51', tmp_path, {f: 'skip' for f in sums})

# ---------------------------------------------------------------- resize: interrupted, bad videos, size clash
def test_resize_resumes(tmp_path):
    sums = fabricate('ucf101', tmp_path/'official', classes=3, frames=6)
    _prep('ucf101', tmp_path, sums, steps=('fetch', 'extract', 'resize'))
    vids = sorted((tmp_path/'data'/'ucf101'/'videos').rglob('*.mp4'))
    assert len(vids) == 9
    # an interrupted run: three outputs missing, one half-written temporary file
    for p in vids[:3]: p.unlink()
    (vids[0].parent/f'.{vids[0].name}.part').write_bytes(b'half')
    keep = {p: p.stat().st_mtime_ns for p in vids[3:]}
    rep = _prep('ucf101', tmp_path, sums)
    assert (rep['resize']['resized'], rep['resize']['skipped']) == (3, 6)
    assert all(p.stat().st_mtime_ns == t for p, t in keep.items())  # finished videos untouched
    assert rep['verify']['ok']
    with pytest.raises(P.PrepareError, match='holds videos resized to 32 px; to prepare 64 px use another --root'):
        P.prepare('ucf101', tmp_path/'data', from_dir=tmp_path/'official', size=64, sha256=sums, progress=False, log=quiet)

def test_undecodable_video(tmp_path):
    sums = fabricate('ucf101', tmp_path/'official', classes=2, frames=6, bad=('v_Archery_g02_c01.avi',))
    rep = _prep('ucf101', tmp_path, sums)
    assert [Path(f['file']).name for f in rep['resize']['failed']] == ['v_Archery_g02_c01.avi']
    v = rep['verify']
    assert not v['ok'] and v['n_missing'] == 1 and v['missing'][0].endswith('v_Archery_g02_c01.avi')
    assert _prep('ucf101', tmp_path, sums, max_bad=0.2)['verify']['ok']  # within a looser threshold
    # nothing already resized is redone; the failed one is tried again
    rep = _prep('ucf101', tmp_path, sums, max_bad=0.2)
    assert rep['resize']['resized'] == 0 and len(rep['resize']['failed']) == 1

def test_missing_split_file(tmp_path):
    sums = fabricate('ucf101', tmp_path/'official', **SMALL)
    _prep('ucf101', tmp_path, sums)
    (tmp_path/'data'/'ucf101'/'splits'/'testlist02.txt').unlink()
    with pytest.raises(P.PrepareError, match=r"'testlist02.txt' not found in folder '.*ucf101/splits'.*run the lists step"):
        _prep('ucf101', tmp_path, sums, steps=('verify',))
    assert _prep('ucf101', tmp_path, sums, steps=('lists', 'verify'))['verify']['ok']
    with pytest.raises(P.PrepareError, match="split folder 'testTrainMulti_7030_splits' not found"):
        P.make_lists('hmdb51', tmp_path/'data'/'hmdb51', tmp_path/'data')

def test_bad_arguments(tmp_path):
    with pytest.raises(P.PrepareError, match='valid: ucf101, hmdb51, k400, k200, diving48'): P.prepare('ucf', tmp_path)
    with pytest.raises(P.PrepareError, match='valid steps: fetch, extract'): P.prepare('ucf101', tmp_path, steps=('download',))
    with pytest.raises(P.PrepareError, match="--from folder '.*nope' does not exist"): P.prepare('ucf101', tmp_path, from_dir=tmp_path/'nope')

def test_rar_reader_missing(tmp_path, monkeypatch):
    fabricate('ucf101', tmp_path/'official', **SMALL)
    monkeypatch.setattr(P.shutil, 'which', lambda t: None)
    with pytest.raises(P.PrepareError, match='no RAR reader.*apt-get install unar libarchive-tools'):
        P.extract_archive(tmp_path/'official'/'UCF101.rar', tmp_path/'out')

# ---------------------------------------------------------------- command line and wrappers
def test_cli_prepare(tmp_path, capsys):
    sums = fabricate('diving48', tmp_path/'official', classes=2, frames=6, bad=('x',))
    args = ['data', 'prepare', 'diving48', '--root', str(tmp_path/'data'), '--from', str(tmp_path/'official'), '--size', '32',
            '--jobs', '2', '--no-progress'] + [a for f, h in sums.items() for a in ('--sha256', f'{f}={h}')]
    assert main(args) == 0
    assert 'verify: 8 listed videos, 0 missing, 0 unreadable' in capsys.readouterr().out
    (tmp_path/'data'/'diving48'/'videos'/next(iter(json.loads((tmp_path/'official'/'Diving48_V2_test.json').read_text())))['vid_name']).with_suffix('.mp4').unlink()
    assert main(args + ['--steps', 'verify']) == 1  # one of eight missing: above the 1% limit
    assert main(['data', 'prepare', 'diving48', '--root', str(tmp_path/'data'), '--sha256', 'x']) == 2
    assert 'expects FILE=VALUE' in capsys.readouterr().err

def test_cli_help_lists_the_datasets():
    code = 'import sys; from s2vc_repro.cli import main; sys.exit(main())'
    r = subprocess.run([sys.executable, '-c', code, 'data', 'prepare', '--help'], capture_output=True, text=True)
    assert r.returncode == 0
    for n, s in P.SPECS.items(): assert f'{n} ({s.title})' in ' '.join(r.stdout.split())

@pytest.mark.parametrize('name', list(P.SPECS))
def test_wrapper_scripts(name):
    p = ROOT/'data_scripts'/f'prepare_{name}.sh'
    assert p.is_file() and os.access(p, os.X_OK)
    assert subprocess.run(['bash', '-n', str(p)]).returncode == 0
    assert f'data prepare {name}' in p.read_text() or 'data prepare "$NAME"' in p.read_text()

# ---------------------------------------------------------------- the paper path on real-format data
TINY = {'model.backbone': 'cnn4', 'model.width': 0.25, 'data.frames': 4, 'data.stride': 1, 'data.size': 16, 'data.resize': 20,
        'data.workers': 0, 'method.queue': 16, 'train.epochs': 1, 'train.batch_size': 4, 'train.milestones': [],
        'train.warmup_epochs': 0, 'train.amp': False, 'eval.linear_epochs': 3, 'eval.batch_size': 8, 'eval.test_mode': 'uniform',
        'eval.test_clips': 2, 'eval.ten_crop': False, 'eval.retrieval_ks': [1, 5]}

def test_paper_path_end_to_end(tmp_path, capsys):
    "Fabricated official archives -> data prepare -> the paper config (tiny sizes) -> pre-train -> linear + retrieval -> table rows."
    import pandas as pd
    from s2vc_repro.reproduce import run_config
    from s2vc_repro.report import join_reported, table_markdown
    from s2vc_repro.runs import RunStore
    data = tmp_path/'data'
    for name in ('ucf101', 'hmdb51'):
        sums = fabricate(name, tmp_path/name, classes=3, per_class=4, frames=10)
        args = ['data', 'prepare', name, '--root', str(data), '--from', str(tmp_path/name), '--size', '24', '--jobs', '2',
                '--no-progress'] + [a for f, h in sums.items() for a in ('--sha256', f'{f}={h}')]
        assert main(args) == 0
    cfg = run_config('s2vc/moco-s3d-ucf101', 'paper', {**TINY, 'data.root': str(data)})
    assert (cfg.profile, cfg.data.dataset, cfg.eval.datasets) == ('paper', 'ucf101', ('ucf101', 'hmdb51'))
    store = RunStore(tmp_path/'runs', echo=False)
    m = store.evaluate(cfg, ('linear', 'retrieval'))
    assert store.metrics(cfg)['steps'] == 2  # 9 training videos, batch 4: two optimiser steps
    assert set(m) == {f'{d}/{p}' for d in ('ucf101', 'hmdb51') for p in ('linear/top1', 'retrieval/R@1', 'retrieval/R@5')}
    assert all(0 <= v <= 1 for v in m.values())
    names = {'ucf101': 'UCF101', 'hmdb51': 'HMDB51'}
    lin = pd.DataFrame([dict(row='MoCo Baseline', column=f"{names[k.split('/')[0]]} linear", value=100 * v) for k, v in m.items() if '/linear/' in k])
    t = join_reported('s2vc-tab1', lin, profile='paper', seeds=[0])
    row = t[(t.row == 'MoCo Baseline') & t.reproduced.notna()]
    assert sorted(row.column) == ['HMDB51 linear', 'UCF101 linear'] and row.reported.notna().all()
    md = table_markdown(t)
    assert 'MoCo Baseline' in md
    print(md)

def test_dry_run_step_uses_prepared_data(tmp_path):
    "`reproduce --profile paper --dry-run` trains its one step on real clips where the dataset is prepared (tiny sizes here)."
    from s2vc_repro.reproduce import dry_run_step, run_config
    sums = fabricate('ucf101', tmp_path/'official', classes=2, frames=8)
    _prep('ucf101', tmp_path, sums)
    for root, data in ((tmp_path/'data', 'prepared'), (tmp_path/'empty', 'random')):
        cfg = run_config('s2vc/moco-s3d-ucf101', 'paper', {**TINY, 'data.root': str(root)})
        r = dry_run_step(cfg)
        assert r['data'] == data and r['loss'] > 0, r

@pytest.mark.parametrize('name,fmt', [('rar3-solid', 'rar4'), ('seektest', 'rar4'), ('rar5-crc', 'rar5'), ('rar5-solid', 'rar5')])
def test_compressed_rar(tmp_path, name, fmt):
    "The RAR readers decompress real RAR4 and RAR5 archives, solid ones included (samples made by `rar`)."
    import zlib
    a = ROOT/'tests'/'data'/'rar'/f'{name}.rar'
    assert P.archive_format(a) == fmt
    info = P.extract_archive(a, tmp_path, log=quiet)
    got = {p.name: zlib.crc32(p.read_bytes()) for p in tmp_path.glob('stest*.txt')}
    assert got == {'stest1.txt': 0xC5B7E6A2, 'stest2.txt': 0xC5B7E6A2} and info['tool'] in P.RAR_READERS[fmt]

def test_k200_reuses_k400(tmp_path):
    "Mini-Kinetics-200 under the same root as a prepared Kinetics-400: nothing extracted or resized twice."
    sums = fabricate('k200', tmp_path/'official', **SMALL)
    k4 = {f: h for f, h in sums.items() if not f.endswith('ytid_list.txt')}
    _prep('k400', tmp_path, k4)
    rep = P.prepare('k200', tmp_path/'data', from_dir=tmp_path/'official', size=32, jobs=2, sha256=sums, progress=False, log=quiet)
    parts = {k: v for k, v in rep['extract']['archives'].items() if 'part_' in k}
    assert parts and all(v.get('shared') == 'k400' for v in parts.values())
    assert rep['resize']['resized'] == 0 and rep['resize']['linked'] == rep['verify']['videos'] > 0
    v200 = sorted((tmp_path/'data'/'k200'/'videos').rglob('*.mp4'))
    assert all(p.stat().st_ino == (tmp_path/'data'/'k400'/'videos'/p.parent.name/p.name).stat().st_ino for p in v200)
    assert rep['verify']['ok']
