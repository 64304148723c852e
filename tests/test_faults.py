"Faults a user meets, each with what they see: bad values, bad split files and videos, damaged runs and flows, other data, an interrupted `reproduce`, a read-only store."
import builtins, io, json, os, re, shutil, signal, subprocess, sys, threading, time
from pathlib import Path
import pytest
import torch
from s2vc_repro.cli import main, is_reported
from s2vc_repro.config import get_config, ConfigError
from s2vc_repro.data.datasets import SplitFileError
from s2vc_repro.data.video import write_video, moving_square
from s2vc_repro.runs import RunStore, RunDataMismatch, load_backbone, DamagedRun
from s2vc_repro import flows
from s2vc_repro.reproduce import make_notebook

pytestmark = pytest.mark.usefixtures('one_thread')  # see conftest.py

CLI = str(Path(sys.executable).parent/'s2vc-repro')
FACTORY = 's2vc_repro.train:random_clips'
TINY = {'data.frames': 4, 'data.size': 8, 'data.resize': 10, 'train.batch_size': 4}  # a few seconds per run

def _main(args, capsys) -> tuple[int, str]:
    "`main`'s exit code and everything it printed (stdout + stderr)."
    try: rc = main(args)
    except SystemExit as e: rc = e.code
    out = capsys.readouterr()
    return rc, out.out + out.err

# --- values -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('setting,valid', [
    ('s2vc.alpha=-1', "'s2vc.alpha' must be > 0, got -1.0"),
    ('train.lr=-1', "'train.lr' must be > 0, got -1.0"),
    ('data.frames=0', "'data.frames' must be >= 1, got 0"),
    ('data.max_bad_fraction=2', "'data.max_bad_fraction' must be [0, 1], got 2.0"),
    ('train.batch_size=-4', "'train.batch_size' must be >= 1, got -4"),
    ('aug.crop_scale=[0.9, 0.1]', 'the first <= the second'),
])
def test_value_out_of_range_is_one_line(setting, valid, capsys):
    rc, out = _main(['config', 'show', '--profile', 'smoke', '--set', setting], capsys)
    assert rc == 2 and valid in out and 'Traceback' not in out and len(out.strip().splitlines()) == 1, out

def test_method_relation_dclr_frames():
    with pytest.raises(ConfigError, match=r'data.frames must be >= 2 for dclr'): get_config('smoke', {'method.name': 'dclr', 'data.frames': 1})

def test_profiles_and_registered_runs_pass():
    "Every profile, with every method and every registered paper run, is within range."
    from s2vc_repro.config import METHODS
    from s2vc_repro.papers import profile_configs
    for p in ('smoke', 'mini', 'paper'):
        assert len(profile_configs(p)) > 0 and all(get_config(p, {'method.name': m}) for m in METHODS)

def test_s2vc_alpha_that_keeps_nothing_is_said(capsys):
    "alpha above every latent STD makes every key clip static: training says so (once) instead of passing in silence."
    from s2vc_repro.augment import ClipAugment
    from s2vc_repro.methods.base import build_method, method_class
    from s2vc_repro.reproduce import random_batch
    cfg = get_config('smoke', {'method.name': 's2vc', 's2vc.alpha': 7})
    m = build_method(cfg, **method_class('s2vc').stand_ins(cfg)).train()
    for _ in range(2): out = m.training_step(random_batch(cfg, m.data_mode, 4), ClipAugment(cfg.aug, cfg.data.size))
    assert float(out['kept']) == 0 and capsys.readouterr().err.count('lower s2vc.alpha (now 7;') == 1

def test_zero_epochs_says_random_init(tmp_path, capsys):
    from s2vc_repro.train import train, RandomClips
    cfg = get_config('smoke', {**TINY, 'train.epochs': 0})
    res = train(cfg, tmp_path, dataset=RandomClips(8, 'pair', 4, 10), progress=False)
    assert 'the backbone keeps its random initialisation' in capsys.readouterr().out and res['steps'] == 0

# --- split files and videos: file and line in one line, also through the training subprocess ------------------

def _ucf(root: Path, train_lines, n_videos: int = 2) -> Path:
    "A UCF101-layout dataset under `root` with `n_videos` small videos in two classes and the given trainlist."
    base = root/'ucf101'
    for k in range(n_videos):
        c = ('left', 'right')[k % 2]
        write_video(base/'videos'/c/f'{c}_{k}.mp4', moving_square(T=12, H=12, W=12, side=4))
    (base/'splits').mkdir(parents=True, exist_ok=True)
    (base/'splits'/'classInd.txt').write_text('1 left\n2 right\n')
    (base/'splits'/'trainlist01.txt').write_bytes(train_lines.encode() if isinstance(train_lines, str) else train_lines)
    return base/'splits'

def _ucf_args(root) -> list:
    return ['--profile', 'smoke', '--method', 'supervised', '--runs', str(root/'runs'), '--set', 'data.dataset=ucf101',
            '--set', f'data.root={root}', *[a for k, v in TINY.items() for a in ('--set', f'{k}={v}')]]

def _train_main(root, capsys) -> tuple[int, str]:
    "What the training process (`python -m s2vc_repro.train RUN_DIR`) prints and returns for the UCF101 data under `root`, run in this process."
    from s2vc_repro.config import to_yaml
    from s2vc_repro.train import main as train_main
    cfg = get_config('smoke', {**TINY, 'method.name': 'supervised', 'data.dataset': 'ucf101', 'data.root': str(root)})
    (root/'run').mkdir(); (root/'run'/'config.yaml').write_text(to_yaml(cfg))
    try: train_main([str(root/'run'), '--no-progress']); rc = 0
    except SystemExit as e: rc = e.code
    out = capsys.readouterr()
    return rc, out.out + out.err

def test_malformed_split_line_is_one_line_at_the_cli(tmp_path, capsys):
    "Through the whole path: the training subprocess prints one `error:` line, the CLI's one line carries it."
    s = _ucf(tmp_path, 'left/left_0.mp4 1\nright/right_1.mp4 two\n')
    rc, out = _main(['pretrain', *_ucf_args(tmp_path)], capsys)
    assert rc == 1 and 'Traceback' not in out, out
    last = out.strip().splitlines()[-1]
    assert last.startswith('s2vc-repro: error: TrainingFailed: ') and 'exited with code 1: SplitFileError: ' in last, out
    assert f"{s/'trainlist01.txt'}:2: expected '<ClassName>/<video> [<label 1..2>]', got 'right/right_1.mp4 two'" in last, out

def test_traceback_flag_shows_the_childs_traceback(tmp_path, capsys):
    _ucf(tmp_path, 'left/left_0.mp4 1\nright/right_1.mp4 two\n')
    with pytest.raises(Exception) as e: main(['--traceback', 'pretrain', *_ucf_args(tmp_path)])
    assert 'Traceback' in str(e.value) and 'parse_ucf101' in str(e.value) and 'S2VC_TRACEBACK' not in os.environ

@pytest.mark.parametrize('case', ['non-utf8', 'no-classind', 'bad-videos'])
def test_data_errors_are_one_line_naming_the_file(tmp_path, capsys, case):
    s = _ucf(tmp_path, b'left/left_0.mp4 1\nright/right_1\xe9.mp4 2\n' if case == 'non-utf8' else 'left/left_0.mp4 1\nright/right_1.mp4 2\n')
    if case == 'no-classind': (s/'classInd.txt').unlink()
    if case == 'bad-videos': (s.parent/'videos'/'right'/'right_1.mp4').write_bytes(b'garbage')
    rc, out = _train_main(tmp_path, capsys)
    want = {'non-utf8': f"error: SplitFileError: {s/'trainlist01.txt'}:2: not UTF-8 text",
            'no-classind': f"error: SplitFileError: UCF101 split file 'classInd.txt' not found in folder '{s}'",
            'bad-videos': 'error: TooManyBadVideos: 1 of 2 video files (50.0%) cannot be read, more than max_bad_fraction=0.05 allows'}[case]
    assert rc == 1 and 'Traceback' not in out and out.strip().splitlines()[0].startswith(want), out

def test_bugs_keep_their_traceback():
    assert is_reported(SplitFileError('x')) and is_reported(ConfigError('x')) and is_reported(OSError('x'))
    assert not is_reported(KeyError('x')) and not is_reported(TypeError('x'))

# --- runs know their data ----------------------------------------------------------------------------------

def test_run_on_damaged_data_is_not_reused_for_clean_data(tmp_path, capsys):
    lines = ''.join(f"{('left', 'right')[k % 2]}/{('left', 'right')[k % 2]}_{k}.mp4\n" for k in range(9))
    s = _ucf(tmp_path, lines, n_videos=9)
    bad = s.parent/'videos'/'right'/'right_1.mp4'
    good = bad.read_bytes(); bad.write_bytes(good[:50])  # truncated: skipped (1 of 9 <= 0.2)
    cfg = get_config('smoke', {**TINY, 'method.name': 'supervised', 'data.dataset': 'ucf101', 'data.root': str(tmp_path),
                               'data.max_bad_fraction': 0.2})
    store = RunStore(tmp_path/'runs', echo=False)
    d = store.pretrain(cfg)
    data = json.loads((d/'done.json').read_text())['data']
    assert data['skipped'] == 1 and data['skipped_files'] == ['ucf101/videos/right/right_1.mp4'] and data['videos'] == 9
    bad.write_bytes(good)  # the data is repaired: the run was not made on it
    with pytest.raises(RunDataMismatch, match=r'(?s)trained on other data: 9 videos.*1 skipped.*--restart'): store.pretrain(cfg)
    rc, out = _main(['pretrain', *_ucf_args(tmp_path), '--set', 'data.max_bad_fraction=0.2'], capsys)
    assert rc == 1 and 'RunDataMismatch' in out and '--restart' in out and 'Traceback' not in out, out
    rc, out = _main(['pretrain', *_ucf_args(tmp_path), '--set', 'data.max_bad_fraction=0.2', '--restart'], capsys)  # the one command that recovers
    assert rc == 0 and 'set aside as' in out, out
    assert json.loads((d/'done.json').read_text())['data']['skipped'] == 0
    assert len(list(d.parent.glob(f'{d.name}.replaced-*'))) == 1

# --- damaged runs and flows: path named, the same command recovers -------------------------------------------

@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "A complete tiny run (random clips, 2 epochs) in a store, copied by each test that damages it."
    root = tmp_path_factory.mktemp('store')
    cfg = get_config('smoke', {**TINY, 'train.epochs': 2, 'train.deterministic': True})
    d = RunStore(root, dataset=FACTORY, echo=False).pretrain(cfg)
    return root, cfg, d.name, (d/'backbone.pt').read_bytes()

def _copy(trained, tmp_path):
    root, cfg, name, weights = trained
    shutil.copytree(root, tmp_path/'store')
    return RunStore(tmp_path/'store', dataset=FACTORY), cfg, tmp_path/'store'/name, weights

@pytest.mark.parametrize('victim,damage', [('backbone.pt', b'\x80\x02garbage'), ('done.json', None), ('ckpt.pt', b'')])
def test_damaged_complete_run_is_named_and_remade(trained, tmp_path, capsys, victim, damage):
    store, cfg, d, weights = _copy(trained, tmp_path)
    f = d/victim
    f.write_bytes(f.read_bytes()[:len(f.read_bytes()) // 2] if damage is None else damage)
    assert store.pretrain(cfg) == d
    out = capsys.readouterr().out
    assert re.search(rf"run {d.name} is damaged: {re.escape(str(f))} (cannot be read|does not match its checksum)", out), out
    assert len(list(d.glob(f'{victim}.corrupt-*'))) == 1 and store.damaged(cfg) == {}
    assert (d/'backbone.pt').read_bytes() == weights  # remade: the same weights (resumed or retrained, deterministic)

def test_garbage_backbone_loaded_directly_names_the_file(trained, tmp_path):
    store, cfg, d, _ = _copy(trained, tmp_path)
    (d/'backbone.pt').write_bytes(b'garbage')
    with pytest.raises(DamagedRun, match=re.escape(str(d/'backbone.pt'))): load_backbone(d)

def test_unreadable_cached_evaluation_is_computed_again(trained, tmp_path, capsys):
    store, cfg, d, _ = _copy(trained, tmp_path)
    calls = []
    store.evaluate_fn = lambda cfg, bb, protocols, **kw: calls.append(protocols) or {f'synth-ucf/{p}/score': 0.5 for p in protocols}
    want = store.evaluate(cfg, ('linear',))
    f, = (d/'eval').glob('linear-*.json')
    f.write_text('{"protocol": "lin')
    assert store.evaluate(cfg, ('linear',)) == want and len(calls) == 2
    assert f"{f} cannot be read; moved to {f.name}.corrupt-" in capsys.readouterr().out
    (d/'done.json').write_text('{"epochs": 2, "ste')
    with pytest.raises(DamagedRun, match=re.escape(str(d/'done.json'))): store.metrics(cfg)
    assert list(store.runs()['status']) == ['damaged']

def test_unreadable_checkpoint_of_interrupted_run_starts_over(trained, tmp_path, capsys):
    store, cfg, d, weights = _copy(trained, tmp_path)
    for n in ('done.json', 'backbone.pt'): (d/n).unlink()
    (d/'ckpt.pt').write_bytes(b'\x80garbage')
    assert store.status(cfg) == 'interrupted'
    assert store.pretrain(cfg) == d
    out = capsys.readouterr().out
    assert f"checkpoint {d/'ckpt.pt'} cannot be read" in out and 'training starts over' in out, out
    assert (d/'backbone.pt').read_bytes() == weights and len(list(d.glob('ckpt.pt.corrupt-*'))) == 1

# --- evaluations know the data and the weights they were computed on ------------------------------------------

def _eval_root(root: Path, test_lines: str) -> Path:
    "A UCF101-layout dataset under `root` for evaluation: 4 videos of 2 classes in the trainlist, `test_lines` as its testlist."
    s = _ucf(root, ''.join(f"{c}/{c}_{k}.mp4 {1 + k % 2}\n" for k, c in enumerate(('left', 'right') * 2)), n_videos=4)
    (s/'testlist01.txt').write_text(test_lines)
    return root

@pytest.mark.parametrize('change', ['replaced', 'empty', 'malformed'])
def test_cached_evaluation_is_not_served_for_other_test_data(trained, tmp_path, capsys, change):
    "The same test data under another data.root is served from the cache; a replaced, empty or malformed test list is not."
    store, cfg, d, _ = _copy(trained, tmp_path)
    calls = []
    store.evaluate_fn = lambda cfg, bb, protocols, **kw: calls.append(cfg.data.root) or {f'ucf101/{p}/top1': 0.5 for p in protocols}
    at = lambda root: cfg.replace(**{'data.root': str(root)})
    a = _eval_root(tmp_path/'a', 'left/left_0.mp4\nright/right_1.mp4\n')
    want = store.evaluate(at(a), ('linear',), datasets=['ucf101'])
    assert store.evaluate(at(a), ('linear',), datasets=['ucf101']) == want and len(calls) == 1  # the same data: cached
    b = tmp_path/'b'; shutil.copytree(a, b)
    assert store.evaluate(at(b), ('linear',), datasets=['ucf101']) == want and len(calls) == 1  # the same data elsewhere: cached
    (b/'ucf101'/'splits'/'testlist01.txt').write_text({'replaced': 'left/left_2.mp4\nright/right_3.mp4\n', 'empty': '',
                                                        'malformed': 'left/left_0.mp4 1 2 3\n'}[change])
    assert store.needed(store.eval_job(at(b), ('linear',), datasets=['ucf101']))  # what `reproduce` plans makes it again
    capsys.readouterr()
    store.evaluate(at(b), ('linear',), datasets=['ucf101'])
    out = capsys.readouterr().out
    assert calls == [str(a), str(b)], calls
    assert re.search(r"linear-\w+\.json was computed on other data: ucf101/test was \w+, .*/b now holds .*; moved to .*\.outdated-.*; it is computed again", out), out
    assert store.evaluate(at(a), ('linear',), datasets=['ucf101']) == want and calls[-1] == str(a)  # back on the first data: made for it again

def test_malformed_test_list_is_an_error_not_a_cached_answer(trained, tmp_path, capsys):
    "Through the real evaluation: the record of the good data is set aside and the malformed file named in one line."
    from s2vc_repro.evaluate import evaluate_backbone
    store, cfg, d, _ = _copy(trained, tmp_path)
    store.evaluate_fn = evaluate_backbone  # the real one, in this process
    root = _eval_root(tmp_path/'a', 'left/left_0.mp4\nright/right_1.mp4\n')
    ecfg = cfg.replace(**{'data.root': str(root), 'eval.linear_epochs': 1})
    res = store.evaluate(ecfg, ('linear',), datasets=['ucf101'])
    assert 0 <= res['ucf101/linear/top1'] <= 1
    lst = root/'ucf101'/'splits'/'testlist01.txt'
    lst.write_text('left/left_0.mp4 1 2 3\n')
    with pytest.raises(Exception, match=re.escape(f"{lst}:1: expected")): store.evaluate(ecfg, ('linear',), datasets=['ucf101'])

def test_run_made_again_has_its_evaluations_made_again(trained, tmp_path, capsys):
    "A run damaged and trained again: the same weights keep their evaluations, its feature cache goes; other weights are evaluated again."
    store, cfg, d, weights = _copy(trained, tmp_path)
    calls = []
    store.evaluate_fn = lambda cfg, bb, protocols, **kw: calls.append(protocols) or {'synth-ucf/linear/top1': float(len(calls))}
    first = store.evaluate(cfg, ('linear',))
    (d/'features').mkdir(); (d/'features'/'0123.pt').write_bytes(b'features of the old weights')
    (d/'backbone.pt').write_bytes(b'garbage'); (d/'ckpt.pt').write_bytes(b'')  # damaged beyond resuming: trained again
    assert store.pretrain(cfg) == d and (d/'backbone.pt').read_bytes() == weights  # deterministic: the same weights
    assert not (d/'features').exists()
    assert store.evaluate(cfg, ('linear',)) == first and len(calls) == 1
    from s2vc_repro.records import atomic_save, atomic_write, file_digest
    sd = torch.load(d/'backbone.pt', weights_only=True)  # other weights, recorded as a run made again records them
    atomic_save({k: v + 1 if v.is_floating_point() else v for k, v in sd.items()}, d/'backbone.pt')
    done = json.loads((d/'done.json').read_text()); done['files']['backbone.pt'] = file_digest(d/'backbone.pt')
    atomic_write(d/'done.json', json.dumps(done))
    assert store.damaged(cfg) == {} and store.needed(store.eval_job(cfg, ('linear',)))
    capsys.readouterr()
    assert store.evaluate(cfg, ('linear',)) == {'synth-ucf/linear/top1': 2.0}
    assert 'was computed with another backbone' in capsys.readouterr().out

def test_garbage_flow_is_named_and_retrained(tmp_path, capsys):
    "A flow run is checked like a pre-training run: a damaged flow.pt is named, set aside and trained again."
    from torchvision.io import write_png
    g = torch.Generator().manual_seed(0)
    (tmp_path/'ims').mkdir()
    for i in range(48): write_png(torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8, generator=g), str(tmp_path/'ims'/f'im{i}.png'))
    cfg = get_config('smoke', {'method.name': 's2vc', 'flow.steps': 2, 'flow.images': str(tmp_path/'ims')})
    store = RunStore(tmp_path/'runs')
    job = store.flow_job(cfg)
    store.ensure([job])
    p = job.dir/'flow.pt'
    assert 'files' in json.loads((job.dir/'done.json').read_text())
    p.write_bytes(b'garbage')
    assert store.needed(job)
    capsys.readouterr()
    store.ensure([job])
    out = capsys.readouterr().out
    assert f"flow run {job.dir.name} is damaged: {p} does not match its checksum" in out and 'made again' in out, out
    flows.load_flow(p, cfg.flow)

def test_torch_load_is_weights_only_everywhere():
    src = Path(flows.__file__).parent
    calls = [(f.name, m) for f in src.rglob('*.py') for m in re.findall(r'torch\.load\([^\n]*', f.read_text())]
    assert calls and all('weights_only=True' in m for _, m in calls), [c for c in calls if 'weights_only=True' not in c[1]]

# --- the lock, and a read-only store -------------------------------------------------------------------------

def test_two_callers_wait_on_the_lock_and_train_once(tmp_path):
    store, cfg = RunStore(tmp_path, dataset=FACTORY, echo=False), get_config('smoke', {**TINY, 'train.epochs': 1})
    res = []
    ts = [threading.Thread(target=lambda: res.append(store.pretrain(cfg))) for _ in range(2)]
    for t in ts: t.start()
    for t in ts: t.join(300)
    assert len(res) == 2 and res[0] == res[1] and store.status(cfg) == 'complete'
    assert (res[0]/'train.out').read_text().count('"config_hash"') == 1  # one training process wrote done.json

@pytest.fixture
def no_writes_under(monkeypatch):
    "Make every write, lock file, rename or removal under a folder fail as on a read-only file system (also for root)."
    roots = []
    def inside(p):
        try: p = Path(os.fsdecode(p)).resolve()
        except (TypeError, ValueError): return False
        return any(p == r or r in p.parents for r in roots)
    def deny(p): raise PermissionError(13, 'Read-only file system', str(p))
    real_open, real_os_open = builtins.open, os.open
    def guarded_open(file, mode='r', *a, **k):
        if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in 'wax+') and inside(file): deny(file)
        return real_open(file, mode, *a, **k)
    def guarded_os_open(path, flags, *a, **k):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path): deny(path)
        return real_os_open(path, flags, *a, **k)
    monkeypatch.setattr(builtins, 'open', guarded_open); monkeypatch.setattr(io, 'open', guarded_open)
    monkeypatch.setattr(os, 'open', guarded_os_open)
    for name in ('replace', 'rename', 'unlink', 'remove', 'mkdir', 'rmdir'):
        real = getattr(os, name)
        def g(p, *a, _real=real, **k):
            if inside(p) and not (_real is os.mkdir and Path(p).is_dir()): deny(p)
            return _real(p, *a, **k)
        monkeypatch.setattr(os, name, g)
    return roots

def test_read_only_store_serves_complete_runs(trained, tmp_path, no_writes_under):
    store, cfg, d, weights = _copy(trained, tmp_path)
    fake = lambda cfg, bb, protocols, **kw: {f'synth-ucf/{p}/score': 0.5 for p in protocols}
    store.evaluate_fn = fake
    want = store.evaluate(cfg, ('linear',))  # cached while the store is writable
    for p in sorted((tmp_path/'store').rglob('*'), reverse=True): p.chmod(p.stat().st_mode & 0o555)
    no_writes_under.append((tmp_path/'store').resolve())
    ro = RunStore(tmp_path/'store', dataset=FACTORY, echo=False, evaluate_fn=lambda *a, **k: pytest.fail('cached results are read'))
    assert ro.pretrain(cfg) == d and ro.evaluate(cfg, ('linear',)) == want
    assert load_backbone(d).state_dict().keys() == torch.load(io.BytesIO(weights), weights_only=True).keys()

# --- reproduce: Ctrl-C during a re-run keeps the finished notebook and the index -----------------------------

PARAMS = "profile = 'smoke'\nout_dir = '.'\nruns_dir = 'runs'\ndata_root = 'data'"
SLOW = ("from pathlib import Path\nimport os, time\nPath(out_dir, 's2vc-tab2.md').write_text('| a |\\n|---|\\n| 1 |')\n"
        "if os.environ.get('S2VC_TEST_SLOW'):\n    Path(os.environ['S2VC_TEST_SLOW']).write_text('started')\n    time.sleep(120)")

def test_interrupted_rerun_keeps_notebook_and_index(tmp_path):
    make_notebook(tmp_path/'nbs'/'s2vc'/'s2vc-tab2.ipynb', [SLOW], PARAMS)
    args = [CLI, 'reproduce', '--profile', 'smoke', '--notebooks', str(tmp_path/'nbs'), '--results', str(tmp_path/'res'),
            '--runs', str(tmp_path/'runs'), '--timeout', '300', '--no-prerun']
    env = {k: v for k, v in os.environ.items() if k != 'S2VC_TEST_SLOW'}
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path/'res'/'smoke'
    executed = (out/'notebooks'/'s2vc-tab2.ipynb').read_bytes()
    (out/'notebooks'/'.dsm-tab2.partial.ipynb').write_text('{}')  # as left by a SIGKILLed run
    marker = tmp_path/'started'
    # as at a terminal, SIGINT is not ignored in the child (an ignored signal would be inherited across exec)
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         env={**env, 'S2VC_TEST_SLOW': str(marker)}, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    t0 = time.time()
    while not marker.exists() and time.time() - t0 < 240 and p.poll() is None: time.sleep(0.2)
    assert marker.exists(), p.communicate()
    os.killpg(p.pid, signal.SIGINT)  # Ctrl-C at the terminal: the whole foreground process group
    so, se = p.communicate(timeout=120)
    assert p.returncode == 130 and se.strip() == 's2vc-repro: interrupted' and 'Traceback' not in so + se, so + se
    assert (out/'notebooks'/'s2vc-tab2.ipynb').read_bytes() == executed
    assert sorted(f.name for f in (out/'notebooks').iterdir()) == ['s2vc-tab2.ipynb']  # no partial file, also not the old one
    row = next(l for l in (out/'index.md').read_text().splitlines() if l.startswith('| s2vc-tab2 |'))
    assert '| done' in row and '[executed notebook](notebooks/s2vc-tab2.ipynb)' in row

# --- reproduce: a failed or interrupted call leaves the committed results as they were --------------------------

def _tree(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob('*')) if p.is_file()}

@pytest.fixture
def committed(tmp_path):
    "A results folder made by a whole call over two notebooks (their kernels replaced by a function that writes what a notebook writes)."
    from s2vc_repro import reproduce as R
    nbs = tmp_path/'nbs'
    for aid in ('s2vc-tab2', 'dsm-tab1'): make_notebook(nbs/aid.split('-')[0]/f'{aid}.ipynb', ['x = 1'], PARAMS)
    def fake_run(nb, out_nb, params, *a, version='1', fail=False):
        aid = Path(nb).stem
        Path(params['out_dir'], f'{aid}.md').write_text(f'| a |\n|---|\n| {version} |')
        Path(params['out_dir'], f'{aid}.csv').write_text(f'artifact,reproduced\n{aid},{version}\n')
        Path(out_nb).parent.mkdir(parents=True, exist_ok=True); Path(out_nb).write_text(f'{{"version": {version}}}')
        return dict(status='failed' if fail else 'done', error='ValueError: broken' if fail else None, wall_s=0.5)
    kw = dict(results=tmp_path/'res', notebooks=nbs, runs=tmp_path/'runs', log=lambda s: None, site=False, tutorials=False, prerun=False)
    mp = pytest.MonkeyPatch()
    mp.setattr(R, 'run_notebook', fake_run); mp.setattr(R, 'plan', lambda *a, **k: None)
    assert R.reproduce('smoke', **kw)['ok']
    out = tmp_path/'res'/'smoke'
    yield R, mp, fake_run, kw, out, _tree(out)
    mp.undo()

def _stop(*a, **k): raise KeyboardInterrupt

@pytest.mark.parametrize('stage', ['plan', 'runs', 'notebooks', 'reporting', 'failed'])
def test_interrupted_or_failed_reproduce_leaves_committed_results_byte_identical(committed, stage):
    R, mp, fake_run, kw, out, before = committed
    assert {'index.md', 'manifest.json', 'claims.md', 's2vc-tab2.md', 'notebooks/s2vc-tab2.ipynb'} <= set(before)
    rerun = lambda nb, out_nb, params, *a: fake_run(nb, out_nb, params, version='2', fail=stage == 'failed')
    mp.setattr(R, 'run_notebook', rerun)
    if stage == 'plan': mp.setattr(R, 'plan', _stop)
    if stage == 'runs':
        mp.setattr(R, 'plan', lambda *a, **k: dict(graph=[], to_make=1, runs=[]))
        mp.setattr(R, 'plan_lines', lambda *a, **k: []); mp.setattr(R, 'make_runs', _stop)
    if stage == 'notebooks': mp.setattr(R, 'run_notebook', lambda *a: (rerun(*a), _stop()))  # wrote its files, then Ctrl-C
    if stage == 'reporting': mp.setattr(R, 'render_index', _stop)  # claims and manifest already rewritten when it stops
    if stage == 'failed':
        res = R.reproduce('smoke', **{**kw, 'log': (lines := []).append})
        assert not res['ok'] and res['failed'] == ['dsm-tab1', 's2vc-tab2']
        assert any('the earlier results of s2vc-tab2 are kept' in l for l in lines) and any('nothing finished' in l for l in lines), lines
    else:
        with pytest.raises(KeyboardInterrupt): R.reproduce('smoke', **{**kw, 'prerun': stage == 'runs'})
    assert _tree(out) == before

def test_interrupted_call_is_recorded_as_interrupted(committed):
    "Ctrl-C in the second notebook: the first one's results are in, the call is marked interrupted, the second keeps its earlier results."
    R, mp, fake_run, kw, out, before = committed
    calls = []
    def second_stops(nb, out_nb, params, *a):
        calls.append(nb); fake_run(nb, out_nb, params, version='2')
        if len(calls) == 2: raise KeyboardInterrupt
        return dict(status='done', error=None, wall_s=0.5)
    mp.setattr(R, 'run_notebook', second_stops)
    with pytest.raises(KeyboardInterrupt): R.reproduce('smoke', **kw)
    first, second = Path(calls[0]).stem, Path(calls[1]).stem
    assert (out/f'{first}.md').read_text().endswith('| 2 |') and (out/f'{second}.md').read_bytes() == before[f'{second}.md']
    man = json.loads((out/'manifest.json').read_text())
    assert man['call'] == dict(state='interrupted', finished_notebooks=1, of=2)
    assert {Path(n['notebook']).stem for n in man['notebooks']} == {first, second}  # the second keeps its earlier entry
    head = next(l for l in (out/'index.md').read_text().splitlines() if 'regenerated by' in l.lower())  # under the title and the testbed line
    assert head.startswith('Partly regenerated by') and 'interrupted after 1 of 2 notebooks' in head, head

def test_missing_data_root_fails_before_anything(tmp_path, capsys):
    rc, out = _main(['reproduce', '--profile', 'paper', '--dry-run', '--data', str(tmp_path/'nope'), '--results', str(tmp_path/'res')], capsys)
    assert rc == 2 and len(out.strip().splitlines()) == 1 and 'Traceback' not in out, out
    assert f"data root {tmp_path/'nope'} does not exist" in out and '`s2vc-repro data prepare ucf101 --root' in out, out
    assert not (tmp_path/'res').exists()

def test_list_honours_only(capsys):
    rc, out = _main(['reproduce', '--only', 'dsm-tab2', 's2vc-tab1', '--list'], capsys)
    assert rc == 0 and [l.split()[0] for l in out.strip().splitlines()] == ['s2vc-tab1', 'dsm-tab2'], out
    rc, out = _main(['reproduce', '--only', 's2vc-tab9', '--list'], capsys)
    assert rc == 2 and "unknown artifact ID 's2vc-tab9'" in out, out

# --- the last silent faults: each one line naming the problem and the fix ---------------------------------------

def test_disk_full_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    "A checkpoint written to a full disk (/dev/full): torch's `unexpected pos` becomes one `DiskFull` line with the fix."
    from s2vc_repro.config import to_yaml
    from s2vc_repro.train import main as train_main
    real = torch.save
    monkeypatch.setattr(torch, 'save', lambda obj, f, *a, **k: real(obj, '/dev/full'))
    (tmp_path/'run').mkdir(); (tmp_path/'run'/'config.yaml').write_text(to_yaml(get_config('smoke', {**TINY, 'train.epochs': 1})))
    with pytest.raises(SystemExit) as e: train_main([str(tmp_path/'run'), '--no-progress', '--dataset', FACTORY])
    err = capsys.readouterr().err
    assert e.value.code == 1 and 'Traceback' not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: DiskFull: no space left on the device holding {tmp_path/'run'}") and 'run the same command again' in err, err

def test_disk_full_at_the_cli_is_one_line(tmp_path, capsys, monkeypatch):
    def full(*a, **k): raise OSError(28, 'No space left on device')
    monkeypatch.setattr(RunStore, 'pretrain', full)
    rc, out = _main(['pretrain', '--profile', 'smoke', '--runs', str(tmp_path/'runs')], capsys)
    assert rc == 1 and len(out.strip().splitlines()) == 1 and 'Traceback' not in out, out
    assert out.startswith(f"s2vc-repro: error: DiskFull: no space left on the device holding {tmp_path/'runs'}") and 'df -h' in out, out

def test_empty_split_file_names_the_file_and_the_fix(tmp_path, capsys):
    s = _ucf(tmp_path, '')
    rc, out = _train_main(tmp_path, capsys)
    want = f"error: SplitFileError: {s/'trainlist01.txt'}: lists no videos (the file is empty); write it again with `s2vc-repro data prepare ucf101 --root {tmp_path}`"
    assert rc == 1 and out.strip().splitlines()[0] == want, out

def test_missing_dataset_names_the_fix_once(tmp_path, capsys):
    "A dataset that is not there: the command that prepares it, said once (the training process's own line is not echoed again)."
    rc, out = _main(['pretrain', *_ucf_args(tmp_path)], capsys)
    assert rc == 1 and 'Traceback' not in out, out
    assert f'write it with `s2vc-repro data prepare ucf101 --root {tmp_path}`' in out and out.count("split file 'classInd.txt' not found") == 1, out

def test_runs_pointing_at_a_file(tmp_path, capsys):
    (tmp_path/'runs').write_text('')
    rc, out = _main(['pretrain', '--profile', 'smoke', '--runs', str(tmp_path/'runs')], capsys)
    assert rc == 1 and len(out.strip().splitlines()) == 1, out
    assert f"NotADirectoryError: run store {tmp_path/'runs'} is a file, not a folder" in out and '--runs' in out, out

def test_data_prepare_jobs_must_be_positive(tmp_path, capsys):
    rc, out = _main(['data', 'prepare', 'ucf101', '--root', str(tmp_path), '--jobs', '-1'], capsys)
    assert rc == 2 and out.strip() == 's2vc-repro: error: --jobs must be >= 1 (parallel resize jobs), got -1', out
    assert not list(tmp_path.iterdir())

def test_failed_evaluation_job_is_an_evaluation_failure(trained, tmp_path, monkeypatch):
    "An evaluation job whose process fails raises `EvaluationFailed` (not `TrainingFailed`)."
    from s2vc_repro.errors import EvaluationFailed, TrainingFailed
    from s2vc_repro.executors import LocalExecutor
    store, cfg, d, _ = _copy(trained, tmp_path)
    store.echo, store.executor = False, LocalExecutor(1, gpus=[], log=(said := []).append)
    job = store.eval_job(cfg, ('nonsense-protocol',))
    with pytest.raises(EvaluationFailed) as e: store.ensure([job])
    assert not isinstance(e.value, TrainingFailed) and 'nonsense-protocol' in str(e.value), e.value

def test_slurm_with_no_submission_stops_before_the_notebooks(tmp_path, monkeypatch):
    "Every Slurm submission failed: reproduce stops in one line before any notebook, the results folder untouched."
    from s2vc_repro import reproduce as R
    from s2vc_repro.executors import SlurmExecutor
    from s2vc_repro.errors import JobFailed
    def no_sbatch(self, job, store, after): raise FileNotFoundError(2, 'No such file or directory', 'sbatch')
    monkeypatch.setattr(SlurmExecutor, 'submit', no_sbatch)
    store = RunStore(tmp_path/'runs', echo=False)
    jobs = [store.job(get_config('smoke', {**TINY, 'method.name': m})) for m in ('moco', 'supervised')]
    monkeypatch.setattr(R, 'plan', lambda *a, **k: dict(graph=jobs, to_make=2, runs=[]))
    monkeypatch.setattr(R, 'plan_lines', lambda *a, **k: [])
    monkeypatch.setattr(R, 'run_notebook', lambda *a, **k: pytest.fail('a notebook ran'))
    make_notebook(tmp_path/'nbs'/'s2vc'/'s2vc-tab2.ipynb', ['x = 1'], PARAMS)
    with pytest.raises(JobFailed, match=r"no job could be submitted to Slurm \(2 tried; the first: FileNotFoundError: .*sbatch.*check that `sbatch` works"):
        R.reproduce('smoke', results=tmp_path/'res', notebooks=tmp_path/'nbs', runs=tmp_path/'runs', executor='slurm',
                    slurm={'poll_s': 0.01}, log=lambda s: None, site=False, tutorials=False)
    assert not (tmp_path/'res').exists()

def test_repair_of_a_damaged_run_is_said_on_the_console(trained, tmp_path):
    from s2vc_repro.executors import LocalExecutor
    store, cfg, d, weights = _copy(trained, tmp_path)
    (d/'backbone.pt').write_bytes(b'garbage')
    store.echo, store.executor = False, LocalExecutor(1, gpus=[], log=(said := []).append)
    store.pretrain(cfg)
    line = next(l for l in said if d.name in l and 'repairing' in l)
    assert f"{d/'backbone.pt'} does not match its checksum" in line and 'made again' in line, said

def test_no_module_imports_the_cli():
    src = Path(flows.__file__).parent
    hits = [f'{f.name}: {l.strip()}' for f in src.rglob('*.py') if f.name != 'cli.py' for l in f.read_text().splitlines()
            if re.search(r'from (s2vc_repro)?\.?cli import|import s2vc_repro\.cli', l)]
    assert not hits, hits
