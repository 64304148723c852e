"The `s2vc-repro` command line: help, config show, --set parsing, usage errors (exit 2), data synth."
import subprocess, sys
from pathlib import Path
import pytest, yaml
from s2vc_repro.cli import main, parse_sets, UsageError
from s2vc_repro.config import get_config

CLI = str(Path(sys.executable).parent/'s2vc-repro')

def run(*args, cwd=None):
    return subprocess.run([CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=600)

def test_help():
    r = run('--help')
    assert r.returncode == 0 and 'reproduce' in r.stdout and 'config' in r.stdout and 'examples:' in r.stdout
    for sub in (['data', 'synth'], ['pretrain'], ['evaluate'], ['reproduce'], ['config', 'show']):
        assert _main([*sub, '--help']) == 0
    r = run('reproduce', '--help')
    assert r.returncode == 0 and '--dry-run' in r.stdout and '--only' in r.stdout and '--timeout' in r.stdout

def _main(args) -> int:
    "`main`'s exit code, also when argparse exits."
    try: return main(args)
    except SystemExit as e: return e.code

def test_config_show_yaml_and_hash():
    r = run('config', 'show', '--profile', 'smoke', '--method', 'dsm', '--set', 'train.lr=1e-2', '--set', 'aug.crop_scale=[0.5, 1.0]')
    assert r.returncode == 0, r.stderr
    d = yaml.safe_load(r.stdout)
    assert d['profile'] == 'smoke' and d['method']['name'] == 'dsm' and d['train']['lr'] == 0.01 and d['aug']['crop_scale'] == [0.5, 1.0]
    want = get_config('smoke', {'method.name': 'dsm', 'train.lr': 0.01, 'aug.crop_scale': [0.5, 1.0]}).hash
    assert r.stdout.strip().splitlines()[-1] == f'# hash: {want}'

@pytest.mark.parametrize('args,needle', [
    (['config', 'show', '--set', 'train.epoch=3'], "unknown config key 'train.epoch'"),
    (['config', 'show', '--set', 'train.epochs=ten'], "'train.epochs' must be of type int"),
    (['config', 'show', '--set', 'model.backbone=resnet9000'], 'r3d18'),
    (['config', 'show', '--set', 'train.lr'], 'key=value'),
    (['pretrain', '--method', 'simclr'], "invalid choice: 'simclr'"),
    (['config', 'show', '--profile', 'huge'], "invalid choice: 'huge'"),
    (['reproduce', '--only', 'xyz'], 'valid IDs'),
    (['reproduce', '--jobs', '0'], "--jobs must be a whole number >= 1 or 'auto', got 0"),
    (['reproduce', '--jobs', 'many'], "--jobs must be a whole number >= 1 or 'auto', got many"),
    (['site', '--profile', 'smoke', '--results', '/nonexistent-results'], 'run `s2vc-repro reproduce --profile smoke` first'),
    (['pretrain', '--data', 'x'], 'unrecognized arguments: --data'),  # no abbreviation: not --dataset-factory
    ([], 'COMMAND'),
])
def test_usage_errors_exit_2(args, needle, capsys):
    rc = _main(args)
    err = capsys.readouterr().err
    assert rc == 2 and needle in err, err
    assert 'Traceback' not in err

def test_bad_set_key_through_console_script():
    r = run('config', 'show', '--profile', 'mini', '--set', 'data.sise=64')
    assert r.returncode == 2 and "unknown config key 'data.sise'" in r.stderr and 'size' in r.stderr and 'Traceback' not in r.stderr

def test_parse_sets():
    assert parse_sets(['a.b=1', 'c=true', 'd=[1, 2]', 'e=1e-4', 'f=text', 'g=']) == {'a.b': 1, 'c': True, 'd': [1, 2], 'e': 1e-4, 'f': 'text', 'g': None}
    with pytest.raises(UsageError): parse_sets(['=3'])

def test_data_synth_smoke(tmp_path):
    pytest.importorskip('s2vc_repro.data.synthetic')
    r = run('data', 'synth', '--profile', 'smoke', '--out', str(tmp_path/'data'))
    assert r.returncode == 0, r.stderr[-2000:]
    for name in ('synth-ucf', 'synth-hmdb'):
        root = tmp_path/'data'/name
        assert (root/'splits'/'classInd.txt').exists() and (root/'splits'/'trainlist01.txt').exists() and (root/'meta.csv').exists()
        assert len(list((root/'videos').rglob('*.mp4'))) > 0
    assert 'synth-ucf' in r.stdout

def test_pretrain_random_clips(tmp_path):
    "`pretrain` trains one run into the store and prints its folder (random clips, a tiny smoke config)."
    pytest.importorskip('s2vc_repro.runs')
    r = run('pretrain', '--method', 'supervised', '--profile', 'smoke', '--runs', str(tmp_path), '--dataset-factory',
            's2vc_repro.train:random_clips', '--set', 'data.frames=4', '--set', 'data.size=8', '--set', 'data.resize=10')
    assert r.returncode == 0, r.stderr[-2000:]
    run_dir = Path(r.stdout.strip().splitlines()[-1])
    assert run_dir.parent == tmp_path and (run_dir/'done.json').exists()

def test_failed_run_is_one_line():
    pytest.importorskip('s2vc_repro.data.synthetic')
    r = run('data', 'synth', '--profile', 'smoke', '--out', '/proc/not-writable')
    assert r.returncode == 1 and r.stderr.startswith('s2vc-repro: error: ') and 'Traceback' not in r.stderr
    r = run('--traceback', 'data', 'synth', '--profile', 'smoke', '--out', '/proc/not-writable')
    assert r.returncode == 1 and 'Traceback' in r.stderr

def test_reproduce_list():
    r = run('reproduce', '--list')
    assert r.returncode == 0 and r.stdout.count('\n') == 33 and 'bench-bias' in r.stdout
