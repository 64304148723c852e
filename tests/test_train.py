"The training loop: resume after a hard kill gives the same weights, DDP ranks stay identical, optimiser paths, NaN guard."
import json, os, signal, subprocess, sys, textwrap
from pathlib import Path
import pytest
import torch
from s2vc_repro.config import get_config, to_yaml
from s2vc_repro.train import train, RandomClips, NonFiniteLossError

FACTORY = 's2vc_repro.train:random_clips'

def _cfg(**over):
    base = {'train.epochs': 3, 'train.batch_size': 4, 'train.deterministic': True, 'data.workers': 0}
    return get_config('smoke', {**base, **over})

def _epochs(run_dir):
    return [r for r in map(json.loads, (Path(run_dir)/'log.jsonl').read_text().splitlines()) if r['type'] == 'epoch']

def _model(run_dir): return torch.load(Path(run_dir)/'ckpt.pt', weights_only=True)['model']

def _env(**kw):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', **kw}
    env.pop('WORLD_SIZE', None); env.pop('RANK', None); env.pop('LOCAL_RANK', None)
    return env

def test_resume_after_sigkill_matches_uninterrupted(tmp_path):
    cfg = _cfg()
    torch.set_num_threads(1)
    ref = tmp_path/'ref'
    train(cfg, ref, dataset=lambda c, m: RandomClips(16, m, c.data.frames, 20, seed=c.train.seed), progress=False, log_every=1)
    run = tmp_path/'run'; run.mkdir(); (run/'config.yaml').write_text(to_yaml(cfg))
    # the CLI run is SIGKILLed when global step 6 starts: mid-epoch 2, after the first checkpoint
    r = subprocess.run([sys.executable, '-m', 's2vc_repro.train', str(run), '--dataset', 'test_train:_factory16',
                        '--no-progress', '--log-every', '1'], env=_env(S2VC_KILL_AT_STEP='6', PYTHONPATH=str(Path(__file__).parent)),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr[-3000:]
    assert not (run/'done.json').exists()
    assert torch.load(run/'ckpt.pt', weights_only=True)['epoch'] == 1
    assert max(r['step'] for r in map(json.loads, (run/'log.jsonl').read_text().splitlines())) == 6  # steps of epoch 2 were logged
    res = train(cfg, run, dataset=lambda c, m: RandomClips(16, m, c.data.frames, 20, seed=c.train.seed), progress=False, log_every=1)
    assert res['epochs'] == 3 and (run/'done.json').exists()
    a, b = _model(ref), _model(run)
    assert a.keys() == b.keys()
    for k in a: assert torch.equal(a[k], b[k]), f'{k} differs after resume'
    ea, eb = _epochs(ref), _epochs(run)
    assert [e['loss'] for e in ea] == [e['loss'] for e in eb]
    steps = [json.loads(l)['step'] for l in (run/'log.jsonl').read_text().splitlines() if json.loads(l)['type'] == 'step']
    assert steps == list(range(1, 13))  # the interrupted epoch's lines were replaced by its replay

def _factory16(cfg, mode): return RandomClips(16, mode, cfg.data.frames, 20, seed=cfg.train.seed)

DDP_SCRIPT = textwrap.dedent('''
    import sys, torch, torch.distributed as dist
    from s2vc_repro.config import load_config
    from s2vc_repro.methods.base import build_method
    from s2vc_repro.train import train, RandomClips
    run_dir = sys.argv[1]
    cfg = load_config(run_dir + '/config.yaml')
    torch.manual_seed(int(__import__('os').environ['RANK']))  # different init per rank: DDP must broadcast rank 0's
    m = build_method(cfg)
    train(cfg, run_dir, method=m, dataset=lambda c, mode: RandomClips(16, mode, c.data.frames, 20), progress=False, log_every=1)
    torch.save({k: v for k, v in m.state_dict().items()}, f'{run_dir}/rank{dist.get_rank()}.pt')
    dist.destroy_process_group()
''')

@pytest.mark.parametrize('method', ['moco'])
def test_ddp_two_processes_end_identical(tmp_path, method):
    cfg = _cfg(**{'train.epochs': 2, 'method.name': method})
    run = tmp_path/'run'; run.mkdir(); (run/'config.yaml').write_text(to_yaml(cfg))
    script = tmp_path/'ddp.py'; script.write_text(DDP_SCRIPT)
    torchrun = Path(sys.executable).parent/'torchrun'
    r = subprocess.run([str(torchrun), '--standalone', '--nproc_per_node=2', str(script), str(run)],
                       env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s0, s1 = (torch.load(run/f'rank{i}.pt', weights_only=True) for i in (0, 1))
    params = {n for n, _ in __import__('s2vc_repro.methods.base', fromlist=['x']).build_method(cfg).named_parameters()}
    for k in s0:
        if k in params or k in ('queue', 'queue_ptr'): assert torch.equal(s0[k], s1[k]), f'{k} differs between ranks'
    done = json.loads((run/'done.json').read_text())
    assert done['world_size'] == 2 and done['steps'] == 2 * 2  # 16 clips / (4 per step x 2 ranks) = 2 steps per epoch

@pytest.mark.parametrize('over', [
    {'train.optimizer': 'sgd', 'train.lr': 0.05, 'train.schedule': 'step', 'train.milestones': (1,), 'train.warmup_epochs': 1, 'train.clip_grad': 1.0},
    {'train.optimizer': 'adam', 'train.schedule': 'const', 'method.name': 'supervised'},
])
def test_optimizers_schedules_methods(tmp_path, over):
    cfg = _cfg(**{'train.epochs': 2, 'train.deterministic': False, **over})
    res = train(cfg, tmp_path, dataset=_factory16, progress=False, log_every=1)
    lrs = [r['lr'] for r in map(json.loads, (tmp_path/'log.jsonl').read_text().splitlines()) if r['type'] == 'step']
    if over.get('train.schedule') == 'step':
        assert lrs[0] == pytest.approx(0.05 / 4) and lrs[-1] == pytest.approx(0.05 * 0.1)  # warm-up, then x0.1 at epoch 1
    else: assert set(lrs) == {cfg.train.lr}
    assert res['final']['loss'] == res['final']['loss']  # finite
    sd = torch.load(tmp_path/'backbone.pt', weights_only=True)
    assert all(k in sd for k in __import__('s2vc_repro.backbones', fromlist=['x']).build_backbone(cfg.model.backbone, cfg.model.width).state_dict())

def test_nonfinite_loss_stops_with_clear_error(tmp_path):
    cfg = _cfg(**{'train.optimizer': 'sgd', 'train.lr': 1e12, 'train.deterministic': False})
    with pytest.raises(NonFiniteLossError, match=r'epoch \d+, step \d+.*lower train.lr.*clip_grad'):
        train(cfg, tmp_path, dataset=_factory16, progress=False)
    assert not (tmp_path/'done.json').exists()

def test_too_small_dataset_is_named(tmp_path):
    with pytest.raises(ValueError, match='fewer than one batch'):
        train(_cfg(), tmp_path, dataset=RandomClips(2, 'pair', 8, 20), progress=False)

def test_cpu_amp_is_bfloat16_where_the_cpu_has_it(tmp_path, monkeypatch):
    "`train.cpu_amp`: the step's forward runs under bfloat16 autocast on a bfloat16 CPU, in float32 elsewhere; done.json says which."
    import s2vc_repro.train as T
    from s2vc_repro.methods.base import build_method
    seen = []
    class Probe(torch.nn.Module):  # records the autocast state the method's forward sees
        def __init__(self, m): super().__init__(); self.module = m  # `train_step` finds the method as DDP's `module`
        def forward(self, batch, aug):
            seen.append((torch.is_autocast_enabled('cpu'), torch.get_autocast_dtype('cpu')))
            return self.module(batch, aug)
    for has, want in ((True, (True, torch.bfloat16)), (False, (False, None))):
        monkeypatch.setattr(T, 'cpu_bf16_supported', lambda has=has: has)
        cfg = _cfg(**{'train.epochs': 1, 'train.cpu_amp': True})
        res = train(cfg, tmp_path/f'run-{has}', dataset=lambda c, m: RandomClips(8, m, c.data.frames, 20), progress=False)
        assert res['precision'] == ('bfloat16 autocast (cpu, train.cpu_amp)' if has else
                                    'float32 (train.cpu_amp is set, but this CPU has no bfloat16 instructions)')
        assert json.loads((tmp_path/f'run-{has}'/'done.json').read_text())['precision'] == res['precision']
        assert all(map(lambda v: torch.isfinite(torch.as_tensor(v)).all(), res['final'].values()))
        r = T.setup_run(cfg, tmp_path/f'probe-{has}', dataset=RandomClips(8, 'pair', cfg.data.frames, 20))
        seen.clear()
        T.train_step(Probe(r.method), next(iter(r.loader)), r.aug, r.opt, amp=r.amp, amp_dtype=r.amp_dtype, device=r.device)
        assert seen[0][0] == want[0] and (not want[0] or seen[0][1] == want[1])
    assert cfg.hash != _cfg(**{'train.epochs': 1}).hash  # the setting counts in the config hash once on
    assert train(_cfg(**{'train.epochs': 1}), tmp_path/'off', dataset=lambda c, m: RandomClips(8, m, c.data.frames, 20),
                 progress=False)['precision'] == 'float32'
