"The reproduction driver: a failing paper notebook, --only, the index of every artifact, provenance, config checks."
import json, subprocess, sys
from pathlib import Path
import pytest
from s2vc_repro.papers import paper_configs
from s2vc_repro.reproduce import (ARTIFACTS, PAPER_RUNS, ArtifactError, check_configs, find_notebooks, make_notebook,
                                  reproduce, resolve_ids)

CLI = str(Path(sys.executable).parent/'s2vc-repro')
WRITES_MD = ("from pathlib import Path\nPath(out_dir, '{id}.md').write_text('| a |\\n|---|\\n| 1 |')\n"
             "Path(out_dir, '{id}.csv').write_text('artifact,reproduced,config_hash,seeds\\n{id},0.5,abc123,0-2\\n')")
PARAMS = "profile = 'smoke'\nout_dir = '.'\nruns_dir = 'runs'\ndata_root = 'data'"

@pytest.fixture(scope='module')
def paper_nbs(tmp_path_factory):
    "Three paper notebooks: one writes its table, one fails, one runs but writes nothing."
    d = tmp_path_factory.mktemp('nbs')
    make_notebook(d/'s2vc'/'s2vc-tab2.ipynb', [WRITES_MD.format(id='s2vc-tab2'), "assert profile == 'smoke'"], PARAMS)
    make_notebook(d/'dsm'/'dsm-tab2.ipynb', ["raise ValueError('the run store is empty')\n"], "artifacts = ['dsm-tab2', 'dsm-tab3']\n" + PARAMS)
    make_notebook(d/'dclr'/'dclr-tab5.ipynb', ["x = 1"], PARAMS)
    make_notebook(d/'dclr'/'_scratch.ipynb', ["raise SystemExit"], PARAMS)
    return d

@pytest.fixture(scope='module')
def first_run(paper_nbs, tmp_path_factory):
    "One `s2vc-repro reproduce` over the three notebooks, through the console script."
    root = tmp_path_factory.mktemp('work')
    r = subprocess.run([CLI, 'reproduce', '--profile', 'smoke', '--notebooks', str(paper_nbs), '--results', str(root/'results'),
                        '--runs', str(root/'runs'), '--timeout', '120', '--no-prerun'], capture_output=True, text=True, cwd=root)  # these notebooks read no run
    return root, r

def _row(index: str, aid: str) -> str:
    return next(l for l in index.splitlines() if l.startswith(f'| {aid} |'))

def test_failure_is_reported_and_others_run(first_run, paper_nbs):
    root, r = first_run
    out = root/'results'/'smoke'
    assert r.returncode == 1, r.stdout + r.stderr
    assert (out/'s2vc-tab2.md').exists()  # the notebook after the failing one still ran
    idx = (out/'index.md').read_text()
    assert '| done' in _row(idx, 's2vc-tab2') and '[md](s2vc-tab2.md) · [csv](s2vc-tab2.csv)' in _row(idx, 's2vc-tab2')
    for aid in ('dsm-tab2', 'dsm-tab3'):  # both IDs of the failing notebook
        row = _row(idx, aid)
        assert 'failed' in row and 'ValueError: the run store is empty' in row and 'dsm-tab2.ipynb' in row
    assert 'failed' in _row(idx, 'dclr-tab5') and 'wrote none' in _row(idx, 'dclr-tab5')
    assert (out/'notebooks'/'dsm-tab2.ipynb').exists() and (out/'notebooks'/'s2vc-tab2.ipynb').exists()
    assert not list(out.rglob('.*')), 'temporary files left behind'
    assert '[1/3]' in r.stdout and '[3/3]' in r.stdout  # progress lines

def test_index_lists_every_artifact(first_run):
    idx = (first_run[0]/'results'/'smoke'/'index.md').read_text()
    for aid in ARTIFACTS: assert f'| {aid} |' in idx
    assert _row(idx, 'bench-bias').count('not yet implemented') == 1
    assert sum('not yet implemented' in _row(idx, a) for a in ARTIFACTS) == len(ARTIFACTS) - 4

def test_manifest_provenance(first_run, paper_nbs):
    man = json.loads((first_run[0]/'results'/'smoke'/'manifest.json').read_text())
    assert man['profile'] == 'smoke' and man['packages']['torch'] and 'cpus' in man['device']
    assert man['parameters']['runs_dir'] == str(first_run[0]/'runs')
    assert {n['notebook'] for n in man['notebooks']} == {str(p) for p in paper_nbs.rglob('[!_]*.ipynb')}
    assert all(n['wall_s'] > 0 for n in man['notebooks'])
    a = man['artifacts']['s2vc-tab2']
    assert a['status'] == 'done' and a['files'] == ['s2vc-tab2.md', 's2vc-tab2.csv'] and a['wall_s'] > 0
    assert a['provenance']['config_hash'] == ['abc123'] and a['provenance']['seeds'] == ['0-2']
    assert set(man['artifacts']) == set(ARTIFACTS)

def test_only_keeps_other_results(paper_nbs, tmp_path):
    "A second run with --only updates its artifacts and carries the others over from the manifest."
    out = tmp_path/'results'
    res = reproduce('smoke', only=['dsm-tab3'], results=out, notebooks=paper_nbs, runs=tmp_path/'runs', log=lambda s: None, prerun=False)
    assert not res['ok'] and sorted(res['failed']) == ['dsm-tab2', 'dsm-tab3']
    res = reproduce('smoke', only=['s2vc'], results=out, notebooks=paper_nbs, runs=tmp_path/'runs', log=lambda s: None, prerun=False)
    assert res['ok'] and res['done'] == ['s2vc-tab2']
    st = json.loads((out/'smoke'/'manifest.json').read_text())['artifacts']
    assert st['dsm-tab3']['status'] == 'failed' and st['s2vc-tab2']['status'] == 'done' and st['dclr-tab5']['status'] == 'not run'

def test_a_new_notebook_is_not_run_until_it_runs(paper_nbs, tmp_path):
    "An artifact an earlier manifest called 'not yet implemented' is 'not run' once its notebook exists."
    early = tmp_path/'early'
    make_notebook(early/'s2vc'/'s2vc-tab2.ipynb', [WRITES_MD.format(id='s2vc-tab2')], PARAMS)
    out, kw = tmp_path/'results', dict(runs=tmp_path/'runs', log=lambda s: None, prerun=False, site=False)
    assert reproduce('smoke', results=out, notebooks=early, **kw)['ok']
    assert json.loads((out/'smoke'/'manifest.json').read_text())['artifacts']['dclr-tab5']['status'] == 'not yet implemented'
    assert reproduce('smoke', only=['s2vc-tab2'], results=out, notebooks=paper_nbs, **kw)['ok']  # dclr-tab5's notebook now exists
    st = json.loads((out/'smoke'/'manifest.json').read_text())['artifacts']
    assert st['dclr-tab5']['status'] == 'not run' and st['s2vc-tab2']['status'] == 'done'
    assert '| dclr-tab5 |' in (idx := (out/'smoke'/'index.md').read_text()) and 'not run' in _row(idx, 'dclr-tab5')

def test_unknown_only_id(tmp_path):
    r = subprocess.run([CLI, 'reproduce', '--profile', 'smoke', '--only', 'dsm-tab1', 'dsm-tab99', '--results', str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "'dsm-tab99'" in r.stderr and 'valid IDs' in r.stderr and 's2vc-fig1' in r.stderr
    assert 'Traceback' not in r.stderr and not list(tmp_path.iterdir())
    with pytest.raises(ArtifactError): resolve_ids(['nope'])

def test_discovery_rule(paper_nbs):
    assert [nb.ids for nb in find_notebooks(paper_nbs)] == [['s2vc-tab2'], ['dsm-tab2', 'dsm-tab3'], ['dclr-tab5']]

def test_paper_configs_are_valid():
    cfgs = paper_configs()
    assert set(cfgs) == set(PAPER_RUNS) and len({c.hash for c in cfgs.values()}) == len(cfgs)
    assert {c.model.backbone for c in cfgs.values()} == {'s3d', 'r3d18', 'c3d', 'i3d', 'r3d34', 'r2plus1d18'}
    assert all(c.profile == 'paper' and c.data.dataset in ('ucf101', 'hmdb51', 'k200', 'k400') for c in cfgs.values())

def test_dry_run_step_smoke():
    "One CPU training step of a smoke config (skipped until the methods module exists)."
    pytest.importorskip('s2vc_repro.methods')
    res = check_configs('smoke', names=['s2vc/moco-s3d-ucf101'], log=lambda s: None)
    r = res['s2vc/moco-s3d-ucf101']
    assert r['ok'], r
    assert r['loss'] == r['loss']  # finite (NaN != NaN)

def test_extra_params_reach_the_notebook(tmp_path):
    "`--param` values are injected into the notebooks (and recorded); the driver's own parameters cannot be overridden."
    nbs = tmp_path/'nbs'
    make_notebook(nbs/'bench'/'bench-bias.ipynb', [WRITES_MD.format(id='bench-bias'), "assert rows == ['MoCo', 'S2VC'], rows"],
                  PARAMS + "\nrows = None")
    r = subprocess.run([CLI, 'reproduce', '--profile', 'smoke', '--notebooks', str(nbs), '--results', str(tmp_path/'results'),
                        '--runs', str(tmp_path/'runs'), '--param', 'rows=[MoCo, S2VC]', '--no-prerun'], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    man = json.loads((tmp_path/'results'/'smoke'/'manifest.json').read_text())
    assert man['parameters']['rows'] == ['MoCo', 'S2VC'] and man['artifacts']['bench-bias']['status'] == 'done'
    with pytest.raises(ValueError, match='profile'): reproduce('smoke', notebooks=nbs, results=tmp_path/'r2', params={'profile': 'mini'})

def test_dry_run_builds_every_method():
    "A dry-run step of every implemented method at the smoke size (S2VC with an untrained stand-in flow)."
    pytest.importorskip('s2vc_repro.methods')
    from s2vc_repro.config import get_config
    from s2vc_repro.reproduce import dry_run_step
    for m in ('s2vc', 'tfd', 'dsm', 'dsm-triplet', 'dclr', 'static-positive'):
        r = dry_run_step(get_config('smoke', {'method.name': m}))
        assert r['loss'] == r['loss'] and r['params_m'] > 0, (m, r)

# A notebook that "trains" a run the way `RunStore` does: a run folder in the store whose train.out shows a tqdm bar
# moving through two epochs, with log.jsonl lines, then writes its table.
TRAINS = r"""
import json, time
from pathlib import Path
d = Path(runs_dir)/'moco-0123456789ab'; d.mkdir(parents=True, exist_ok=True)
(d/'config.yaml').write_text('profile: smoke\nmethod:\n  name: moco\ntrain:\n  seed: 2\n  batch_size: 8\n')
with open(d/'train.out', 'w') as out, open(d/'log.jsonl', 'w') as log:
    for e in (1, 2):
        for i in range(0, 11, 2):
            out.write(f'\repoch {e}/2:  {10 * i}%|##        | {i}/10 [00:01<00:04,  4.00it/s, loss=5.0]'); out.flush()
            log.write(json.dumps({'type': 'step', 'epoch': e - 1, 'clips_per_s': 32.0}) + '\n'); log.flush()
            time.sleep(0.4)
(d/'done.json').write_text('{"wall_time": 5.0, "method": "moco"}')
Path(out_dir, 's2vc-tab2.md').write_text('| a |\n|---|\n| 1 |')
"""

@pytest.mark.parametrize('quiet', [False, True])
def test_progress_shows_epochs_and_eta(tmp_path, quiet):
    nbs = tmp_path/'nbs'
    make_notebook(nbs/'s2vc'/'s2vc-tab2.ipynb', [TRAINS], PARAMS)
    lines = []
    res = reproduce('smoke', results=tmp_path/'results', notebooks=nbs, runs=tmp_path/'runs', log=lines.append, quiet=quiet, site=False, prerun=False)
    assert res['ok']
    text = '\n'.join(lines)
    if quiet:
        assert len(lines) == 1 and 'plan:' not in text and 'training moco' not in text  # the summary only
        return
    assert lines[0].startswith('plan: ') and 'flow' in lines[0] and 'eval' in lines[0]  # the plan (of the job graph) comes first
    for e in (1, 2): assert f'training moco, seed 2: epoch {e}/2' in text, text
    assert 'ETA 0:' in text and '32 clips/s' in text and '[1/1] s2vc-tab2' in text

MEETS = ("import time\nfrom pathlib import Path\nassert Path.cwd().name == '{folder}', Path.cwd()  # the kernel runs in its notebook's folder\n"
         "Path(out_dir, '{me}.started').write_text('')\n"
         "t0 = time.time()\nwhile not Path(out_dir, '{other}.started').exists():\n"
         "    assert time.time() - t0 < 120, 'the other notebook never started beside this one'\n    time.sleep(0.2)\n"
         "Path(out_dir, '{me}.md').write_text('| a |\\n|---|\\n| 1 |')")

def test_notebook_jobs_run_notebooks_side_by_side(tmp_path, monkeypatch):
    "Each of two notebooks waits until the other has started: they pass only when executed at once."
    nbs = tmp_path/'nbs'
    make_notebook(nbs/'s2vc'/'s2vc-tab2.ipynb', [MEETS.format(me='s2vc-tab2', other='dsm-tab1', folder='s2vc')], PARAMS)
    make_notebook(nbs/'dsm'/'dsm-tab1.ipynb', [MEETS.format(me='dsm-tab1', other='s2vc-tab2', folder='dsm')], PARAMS)
    monkeypatch.chdir(tmp_path)  # relative results and runs folders: no notebook may move this process's working folder
    lines = []
    res = reproduce('smoke', results='results', notebooks=nbs, runs='runs', log=lines.append, site=False,
                    prerun=False, tutorials=False, notebook_jobs=2)
    assert res['ok'] and sorted(res['done']) == ['dsm-tab1', 's2vc-tab2'], lines
    assert Path.cwd() == tmp_path
    man = json.loads((tmp_path/'results'/'smoke'/'manifest.json').read_text())
    assert {man['artifacts'][i]['status'] for i in ('dsm-tab1', 's2vc-tab2')} == {'done'}
    assert sum(l.strip().startswith('[') and 'done in' in l for l in lines) == 2  # one line as each ends, naming it
    with pytest.raises(ValueError, match='notebook_jobs'): reproduce('smoke', notebooks=nbs, results=tmp_path/'r2', notebook_jobs=0)
    r = subprocess.run([CLI, 'reproduce', '--profile', 'smoke', '--notebooks', str(nbs), '--notebook-jobs', '0'], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and '--notebook-jobs must be >= 1' in r.stderr, r.stderr

def test_results_of_an_earlier_profile_configuration_are_marked(paper_nbs, tmp_path):
    "An artifact made under another configuration of the profile is marked in the index until it is re-run."
    out, kw = tmp_path/'results', dict(notebooks=paper_nbs, runs=tmp_path/'runs', log=lambda s: None, prerun=False, site=False)
    assert reproduce('smoke', only=['s2vc-tab2'], results=out, **kw)['ok']
    man_p = out/'smoke'/'manifest.json'
    man = json.loads(man_p.read_text())
    assert man['artifacts']['s2vc-tab2']['profile_config_hash'] == man['profile_config_hash']
    man['profile_config_hash'] = 'a0a0a0a0a0a0'  # a manifest written under another configuration, from before the per-artifact hash
    del man['artifacts']['s2vc-tab2']['profile_config_hash']
    man_p.write_text(json.dumps(man))
    reproduce('smoke', only=['dclr-tab5'], results=out, **kw)  # another artifact only: s2vc-tab2 is carried over
    index = (out/'smoke'/'index.md').read_text()
    assert '*earlier profile* (`a0a0a0a0a0a0`)' in _row(index, 's2vc-tab2') and '--only s2vc-tab2`' in index
    assert '*earlier profile*' not in _row(index, 'dclr-tab5')  # it ran under this configuration (and failed)
    assert reproduce('smoke', only=['s2vc-tab2'], results=out, **kw)['ok']  # re-run: no longer marked
    assert '*earlier profile*' not in (out/'smoke'/'index.md').read_text()

SEEDS_CSV = ("from pathlib import Path\nPath(out_dir, '{id}.md').write_text('| a |')\n"
             "Path(out_dir, '{id}-seeds.csv').write_text('artifact,row,column,seed,value,config_hash,run\\n{id},MoCo,UCF101 finetune,0,{v},h0,moco\\n')")

def test_one_store_one_number(tmp_path):
    "An evaluation that shows two values across the tables of a results folder fails the reproduction, named in the index and manifest."
    nbs = tmp_path/'nbs'
    make_notebook(nbs/'dsm'/'dsm-tab1.ipynb', [SEEDS_CSV.format(id='dsm-tab1', v=71.5)], PARAMS)
    make_notebook(nbs/'dsm'/'dsm-tab4.ipynb', [SEEDS_CSV.format(id='dsm-tab4', v=71.5)], PARAMS)
    kw = dict(results=tmp_path/'results', notebooks=nbs, runs=tmp_path/'runs', log=lambda s: None, prerun=False, tutorials=False, site=False)
    res = reproduce('smoke', **kw)
    man = json.loads((tmp_path/'results'/'smoke'/'manifest.json').read_text())
    assert res['ok'] and man['consistency'] == {'ok': True, 'seed_values': 2}
    assert man['command'] and man['wall_s'] > 0 and 'dsm-tab1-seeds.csv' in man['artifacts']['dsm-tab1']['files']
    make_notebook(nbs/'dsm'/'dsm-tab4.ipynb', [SEEDS_CSV.format(id='dsm-tab4', v=71.8)], PARAMS)  # the same evaluation, another number
    res = reproduce('smoke', only=['dsm-tab4'], **kw)
    man = json.loads((tmp_path/'results'/'smoke'/'manifest.json').read_text())
    assert not res['ok'] and not res['failed'] and not man['consistency']['ok']
    assert 'h0 / UCF101 finetune / seed 0: 71.5 in dsm-tab1 (MoCo), 71.8 in dsm-tab4 (MoCo)' in man['consistency']['error']
    assert '**Inconsistent results**' in (tmp_path/'results'/'smoke'/'index.md').read_text()

# A notebook that "trains a flow" the way a job of the store does: its train.out shows tqdm's flow bar moving.
FLOW = r"""
import time
from pathlib import Path
d = Path(runs_dir)/'flow-0123456789ab'; d.mkdir(parents=True, exist_ok=True)
(d/'config.yaml').write_text('profile: smoke\nmethod:\n  name: s2vc\n')
with open(d/'train.out', 'w') as out:
    out.write('training flow flow-0123456789ab (1500 steps, 32x32)\n'); out.flush(); time.sleep(2)
    for i in range(0, 60, 3):
        out.write(f'\rflow:   {i // 15}%|          | {i}/1500 [00:{i // 3:02d}<04:00,  6.00it/s]'); out.flush()
        time.sleep(0.5)
(d/'done.json').write_text('{"wall_time": 10.0}')
Path(out_dir, 's2vc-fig2.md').write_text('| a |\n|---|\n| 1 |')
"""

def test_live_line_on_a_terminal_shows_flow_steps_and_eta(tmp_path):
    "Through the console script on a pseudo-terminal, at mini on an empty store: the plan estimates the work from the cost table, and within 30 s the live line shows the flow's step moving, with an ETA."
    import os, pty, re, select, time
    make_notebook(tmp_path/'nbs'/'s2vc'/'s2vc-fig2.ipynb', [FLOW], PARAMS)
    args = [CLI, 'reproduce', '--profile', 'mini', '--notebooks', str(tmp_path/'nbs'), '--results', str(tmp_path/'res'),
            '--runs', str(tmp_path/'runs'), '--no-prerun', '--no-site', '--no-tutorials']
    import fcntl, struct, termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 80, 0, 0))  # an 80-column terminal
    p = subprocess.Popen(args, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, cwd=tmp_path, close_fds=True)
    os.close(slave)
    buf, t0, steps = b'', time.time(), []
    try:
        while time.time() - t0 < 30 and len(set(steps)) < 3:
            if select.select([master], [], [], 0.5)[0]:
                try: buf += os.read(master, 65536)
                except OSError: break
            steps = [int(s) for s in re.findall(rb'training flow-0123456789ab: step (\d+)/1500 \xc2\xb7 ETA \d+:\d\d', buf)]
    finally:
        p.wait(timeout=120); os.close(master)
    assert len(set(steps)) >= 3 and steps == sorted(steps), buf.decode(errors='replace')[-2000:]
    assert b'\r[1/1] s2vc-fig2' in buf  # rewritten in place
    plan = re.search(rb'plan: 1 run\(s\) at mini \(seeds 0,1,2; 1 flow\): 0 complete in \S+, 1 to make, about (\d+):(\d\d) of work', buf)
    assert plan and 60 <= 60 * int(plan[1]) + int(plan[2]) <= 600, buf.decode(errors='replace')[:2000]  # the cost table's flow, before anything ran
    assert buf.index(plan[0]) < buf.index(b'training flow-0123456789ab: step')
