"Scale-out: the job graph made N at a time on this machine (the same results as one at a time), and through a real single-node Slurm."
import json, os, shutil, signal, socket, subprocess, sys, time
from pathlib import Path
import pytest
from s2vc_repro.config import get_config
from s2vc_repro.executors import LocalExecutor
from s2vc_repro.records import file_digest
from s2vc_repro.runs import RunStore

ROOT = Path(__file__).resolve().parents[1]

def _graph(store, data):
    "A small graph with every kind and an edge of each sort: flow -> S2VC -> evaluation, MoCo -> evaluation."
    over = {'data.root': str(data), 'train.deterministic': True}
    s2vc, moco = get_config('smoke', {**over, 'method.name': 's2vc'}), get_config('smoke', over)
    return [store.eval_job(c, ('linear',)) for c in (s2vc, moco)]

def _results(store, jobs) -> dict:
    "What a graph produced: each run's weights (digest) and final loss, each evaluation's metrics."
    out = {}
    for j in store.graph(jobs):
        if j.kind == 'flow': out[j.name] = file_digest(j.dir/'flow.pt')
        elif j.kind == 'pretrain': out[j.name] = (file_digest(j.dir/'backbone.pt'), json.loads((j.dir/'done.json').read_text())['final']['loss'])
        else: out[j.name] = json.loads((Path(j.spec['run'])/'eval'/f"linear-{j.spec['hash']}.json").read_text())['metrics']
    return out

@pytest.mark.timeout(2400)
def test_local_jobs_2_equals_sequential(tmp_path):
    "The same graph made one job at a time and two at a time (one CPU thread per job in both): the same weights and metrics; the two ran at once."
    data = tmp_path/'data'
    said = []
    log = lambda s: said.append((time.time(), s))
    seq = RunStore(tmp_path/'seq', echo=False, executor=LocalExecutor(1, gpus=[], threads=1, log=log))
    jobs = _graph(seq, data)
    assert seq.executor.run(jobs, seq) == {j.name: None for j in seq.graph(jobs)}
    par = RunStore(tmp_path/'par', echo=False, executor=LocalExecutor(2, gpus=[], threads=1, log=log))
    said.clear()
    pjobs = _graph(par, data)
    assert par.executor.run(pjobs, par) == {j.name: None for j in par.graph(pjobs)}
    a, b = _results(seq, jobs), _results(par, pjobs)
    assert a == b and len(a) == 5, (a, b)
    starts = [t for t, s in said if s.startswith(('training', 'evaluating'))]
    ends = [t for t, s in said if s.strip().startswith('done')]
    assert len(starts) == 5 and starts[1] < ends[0], said  # the second job started before the first ended

# --- a single-node Slurm on this machine ---------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def _skip(why: str):
    print(f'SKIPPED Slurm test: {why}', flush=True)  # said in the log, never silently
    pytest.skip(why)

@pytest.fixture
def slurm(tmp_path):
    "Start munged, slurmctld and slurmd (CPU only, one node: this machine) with a minimal config; yield the environment that reaches them."
    need = [t for t in ('munged', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'sinfo', 'srun') if not shutil.which(t)]
    if need: _skip(f"{', '.join(need)} not found (Debian: apt-get install slurm-wlm munge)")
    if os.geteuid() != 0: _skip('slurmd must run as root here (not root)')
    d = tmp_path/'slurm'
    for sub in ('state', 'spool', 'munge'): (d/sub).mkdir(parents=True)
    os.chmod(d/'munge', 0o700)
    key = d/'munge'/'munge.key'; key.write_bytes(os.urandom(1024)); os.chmod(key, 0o400)
    sock = d/'munge'/'munge.socket'
    host = socket.gethostname().split('.')[0]
    conf = d/'slurm.conf'
    conf.write_text(f"""ClusterName=s2vctest
SlurmctldHost={host}
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={sock}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=5
MinJobAge=600
NodeName={host} CPUs={os.cpu_count()} State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
    env = {**os.environ, 'SLURM_CONF': str(conf)}
    started = []
    def start(cmd):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        if r.returncode: stop(); _skip(f"`{' '.join(map(str, cmd))}` failed: {(r.stderr or r.stdout).strip()[-500:]}")
        started.append(cmd[0])
    def stop():
        "Cancel every job and wait until Slurm has ended them (slurmd escalates to SIGKILL), then stop the daemons."
        if 'slurmd' in started:
            subprocess.run(['scancel', '--full', '-u', 'root'], env=env, capture_output=True, timeout=60)
            t0 = time.time()
            while time.time() - t0 < 120:
                r = subprocess.run(['squeue', '-h', '-t', 'running,completing,pending'], env=env, capture_output=True, text=True, timeout=60)
                if r.returncode or not r.stdout.strip(): break
                time.sleep(2)
        for name in ('slurmd', 'slurmctld'):
            pid = d/f'{name}.pid'
            if pid.exists():
                try: os.kill(int(pid.read_text()), signal.SIGTERM)
                except (ValueError, ProcessLookupError): pass
        if (d/'munge'/'munged.pid').exists():
            try: os.kill(int((d/'munge'/'munged.pid').read_text()), signal.SIGTERM)
            except (ValueError, ProcessLookupError): pass
    start(['munged', '--force', f'--key-file={key}', f'--socket={sock}', f"--pid-file={d/'munge'/'munged.pid'}",
           f"--log-file={d/'munge'/'munged.log'}", f"--seed-file={d/'munge'/'munged.seed'}"])
    start(['slurmctld', '-c', '-f', str(conf)])
    start(['slurmd', '-f', str(conf)])
    t0 = time.time()
    while time.time() - t0 < 90:
        r = subprocess.run(['sinfo', '-h', '-o', '%T'], env=env, capture_output=True, text=True, timeout=30)
        if r.stdout.strip() in ('idle', 'mixed', 'allocated'): break
        time.sleep(1)
    else:
        logs = ' | '.join(f"{n}: {(d/n).read_text()[-300:] if (d/n).exists() else '-'}" for n in ('slurmctld.log', 'slurmd.log'))
        stop(); _skip(f"the node did not come up (sinfo: {r.stdout.strip() or r.stderr.strip()}); {logs}")
    yield env
    stop()

@pytest.mark.timeout(2400)  # a Slurm job starts a Python with torch: minutes on a busy 2-core machine
def test_slurm_smoke_reproduction(slurm, tmp_path, monkeypatch):
    "`reproduce --executor slurm` at smoke: bench-bias's MoCo and S2VC rows (flow -> S2VC -> evaluation, MoCo -> evaluation) as Slurm jobs, then the notebook."
    for k, v in slurm.items(): monkeypatch.setenv(k, v)
    from s2vc_repro.reproduce import reproduce
    lines = []
    res = reproduce('smoke', only=['bench-bias'], results=tmp_path/'results', runs=tmp_path/'runs', data=tmp_path/'data',
                    executor='slurm', slurm={'poll_s': 2, 'time_min': 60}, log=lines.append, tutorials=False, site=False,
                    params={'rows': ['MoCo', 'S2VC']})
    text = '\n'.join(lines)
    assert res['ok'], text
    man = json.loads((tmp_path/'results'/'smoke'/'manifest.json').read_text())
    assert man['runs']['made'] == 5 and not man['runs']['failed'] and man['executor']['kind'] == 'slurm', man['runs']
    assert 'submitted flow-' in text and '(after ' in text  # dependencies went to Slurm
    flow = next((tmp_path/'runs').glob('flow-*'))
    assert list((flow/'slurm').glob('*_log.out')) and (flow/'done.json').exists()  # logs in the run folder
    s2vc = next((tmp_path/'runs').glob('s2vc-*'))
    assert json.loads((s2vc/'job.json').read_text())['kind'] == 'pretrain' and list((s2vc/'slurm').glob('*_log.out'))

# --- the GPU check, on a machine without CUDA ----------------------------------------------------------------

def test_gpu_check_says_it_needs_cuda():
    import torch
    if torch.cuda.is_available(): pytest.skip('this machine has CUDA: the check itself runs (see benchmarks/gpu_check.py)')
    r = subprocess.run([sys.executable, str(ROOT/'benchmarks'/'gpu_check.py')], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and 'gpu_check: no CUDA device' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1

# --- reproduce: the plan is what the notebooks read ----------------------------------------------------------

@pytest.mark.timeout(2400)
def test_reproduce_makes_the_plan_then_the_notebook_reads_it(tmp_path):
    "`reproduce --jobs 2` makes every planned run first; the notebook then asks for nothing beyond the plan."
    from s2vc_repro.progress import plan
    from s2vc_repro.reproduce import reproduce
    kw = dict(results=tmp_path/'results', runs=tmp_path/'runs', data=tmp_path/'data', tutorials=False, site=False,
              params={'rows': ['MoCo', 'S2VC']})
    lines = []
    res = reproduce('smoke', only=['bench-bias'], jobs=2, log=lines.append, **kw)
    assert res['ok'], '\n'.join(lines)
    man = json.loads((tmp_path/'results'/'smoke'/'manifest.json').read_text())
    assert man['runs']['made'] == 5 and not man['runs']['failed'] and man['executor'] == {'kind': 'local', 'jobs': 2}  # flow, 2 runs, 2 evaluations
    text = '\n'.join(lines)
    assert text.index('plan: ') < text.index('making 5 run(s)') < text.index('[1/1] bench-bias'), text
    p = plan('smoke', ['bench-bias'], tmp_path/'runs', tmp_path/'data', {'rows': ['MoCo', 'S2VC']})
    assert p['to_make'] == 0 and p['complete'] == 5
    planned = {f for j in p['graph'] if j.kind == 'eval' for f in (Path(j.spec['run'])/'eval').glob(f"*-{j.spec['hash']}.json")}
    assert planned == set((tmp_path/'runs').glob('*/eval/*.json'))  # the notebook evaluated nothing that was not planned

def test_local_auto_shares_the_cores_among_ready_jobs(tmp_path):
    "`jobs='auto'` on 2 cores: a job that runs alone (the flow) gets both threads, two ready jobs one each and run at once; a failure stops what needs it."
    import threading, types
    from s2vc_repro.runs import TrainingFailed
    J = lambda name, *deps: types.SimpleNamespace(name=name, kind='pretrain', deps=deps, dir=tmp_path/name)
    flow = J('flow'); a, b = J('a', flow), J('b', flow); c = J('c', a, b)
    store = types.SimpleNamespace(todo=lambda jobs: [flow, a, b, c], graph=lambda jobs: [flow, a, b, c], write_spec=lambda j: None,
                                  echo=False, nproc=None, dataset=None)
    ex = LocalExecutor('auto', gpus=[]); ex.cores = ex.jobs = 2
    seen, lock, live = {}, threading.Lock(), set()
    def launch(group, store, n, ids, threads=None):
        job, = group  # pre-trainings: one job a process
        with lock: live.add(job.name); seen[job.name] = (threads, set(live))
        time.sleep(0.3)
        with lock: live.discard(job.name)
        if job.name == 'b': raise RuntimeError('b broke')
    ex._launch = launch
    res = ex.run([c], store)
    assert seen['flow'][0] == 2 and seen['a'][0] == 1 and seen['b'][0] == 1, seen
    assert {'a', 'b'} <= seen['a'][1] | seen['b'][1] and (seen['a'][1] == {'a', 'b'} or seen['b'][1] == {'a', 'b'})  # a and b overlapped
    assert res['flow'] is None and res['a'] is None and 'b broke' in str(res['b'])
    assert isinstance(res['c'], TrainingFailed) and 'c' not in seen
