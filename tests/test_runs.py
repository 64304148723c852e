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
