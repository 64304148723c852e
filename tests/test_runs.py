"The run store: training in a subprocess, reuse, resume after a kill, failures carry the log tail, cached evaluation."
import json
import pytest
import torch
from s2vc_repro.config import get_config
from s2vc_repro.runs import RunStore, TrainingFailed, load_backbone

FACTORY = 's2vc_repro.train:random_clips'

def _cfg(**over): return get_config('smoke', {'train.epochs': 2, 'train.batch_size': 16, **over})

def test_interrupted_run_resumes_and_complete_run_is_reused(tmp_path, monkeypatch):
    store, cfg = RunStore(tmp_path, dataset=FACTORY, echo=False), _cfg()
    monkeypatch.setenv('S2VC_KILL_AT_STEP', '3')  # random_clips: 32 clips / 16 = 2 steps per epoch -> killed in epoch 2
    with pytest.raises(TrainingFailed, match='exited with code -9'):
        store.pretrain(cfg)
    assert store.status(cfg) == 'interrupted'
    d = store.run_dir(cfg)
    assert torch.load(d/'ckpt.pt', weights_only=True)['epoch'] == 1
    monkeypatch.delenv('S2VC_KILL_AT_STEP')
    assert store.pretrain(cfg) == d and store.status(cfg) == 'complete'
    assert torch.load(d/'ckpt.pt', weights_only=True)['epoch'] == 2
    assert list(store.log(cfg)['epoch']) == [0, 1]
    out = (d/'train.out').read_text()
    store.pretrain(cfg)  # complete: nothing is launched
    assert (d/'train.out').read_text() == out
    assert store.metrics(cfg)['steps'] == 4
    bb = load_backbone(d)
    assert bb(torch.rand(2, 3, cfg.data.frames, cfg.data.size, cfg.data.size)).shape == (2, bb.feat_dim)

def test_failing_training_raises_with_its_output_tail(tmp_path):
    store = RunStore(tmp_path, dataset='no_such_module:factory', echo=False)
    with pytest.raises(TrainingFailed, match="(?s)exited with code 1.*No module named 'no_such_module'"):
        store.pretrain(_cfg())

def test_real_pipeline_pretrain_then_cached_evaluate(tmp_path, monkeypatch):
    "Synthetic smoke benchmark -> MoCo pre-training (subprocess) -> evaluate_backbone -> cached JSON."
    cfg = get_config('smoke', {'data.root': str(tmp_path/'data')})
    store = RunStore(tmp_path/'runs', echo=False)
    res = store.evaluate(cfg, ('linear', 'retrieval'))
    assert {'synth-ucf/linear/top1', 'synth-ucf/retrieval/R@1'} <= set(res)
    files = sorted(p.name for p in (store.run_dir(cfg)/'eval').iterdir())
    assert [f.split('-')[0] for f in files] == ['linear', 'retrieval']
    cached = json.loads((store.run_dir(cfg)/'eval'/files[0]).read_text())
    assert cached['provenance']['config_hash'] == cfg.hash and cached['protocol'] == 'linear'
    import s2vc_repro.evaluate as ev
    monkeypatch.setattr(ev, 'evaluate_backbone', lambda *a, **k: pytest.fail('cached results must not be recomputed'))
    assert store.evaluate(cfg, ('retrieval', 'linear')) == {**res}

def test_evaluations_of_a_run_share_one_process_and_its_features(tmp_path, monkeypatch):
    "The evaluation jobs of a run are made by one process, each logged to its own folder; the features they extract are kept for the next evaluation."
    from s2vc_repro.executors import LocalExecutor
    from s2vc_repro.runs import evaluate_job, eval_hash, _CACHES
    import s2vc_repro.evaluate as ev
    cfg = get_config('smoke', {'data.root': str(tmp_path/'data'), 'eval.linear_epochs': 1})
    lines = []
    store = RunStore(tmp_path/'runs', echo=False, executor=LocalExecutor(log=lines.append))
    jobs = [store.eval_job(cfg, p) for p in ('linear', 'retrieval', 'shuffle')]
    res = store.executor.run(jobs, store)
    assert list(res.values()) == [None] * 4, res  # the pre-training (which generates the data), then the three evaluations
    d = store.run_dir(cfg)
    assert [l for l in lines if 'done' in l][-1].startswith(f'  done 3 evaluations of {d.name} in '), lines
    assert [j.log.read_text().splitlines()[0] for j in jobs] == [f'evaluating {d.name} ({p})' for p in ('linear', 'retrieval', 'shuffle')]  # each its own log
    assert not any(store.needed(j) for j in jobs)
    feats = sorted((d/'features').glob('*.pt'))
    assert len(feats) == 8  # per evaluation dataset (2): train and test, natural and shuffled
    # another evaluation reads them all (no extraction), and gives what extracting them again gives
    monkeypatch.setattr(ev, 'extract_features', lambda *a, **k: pytest.fail('features are read from the cache'))
    _CACHES.clear()
    spec = {'run': str(d), 'protocols': ['linear'], 'kwargs': {'datasets': ['synth-ucf']}, 'hash': eval_hash(cfg, datasets=['synth-ucf'])}
    evaluate_job(cfg, spec)
    cached = json.loads((d/'eval'/f"linear-{spec['hash']}.json").read_text())
    assert cached['provenance']['backbone'] == json.loads((d/'done.json').read_text())['files']['backbone.pt']
    assert set(cached['provenance']['data']) == {'synth-ucf/train', 'synth-ucf/test'}
    monkeypatch.undo()
    fresh = ev.evaluate_backbone(cfg, load_backbone(d), ('linear',), device='cpu', datasets=['synth-ucf'])
    assert cached['metrics'] == fresh
