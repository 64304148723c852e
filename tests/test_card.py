"The scene-bias card: every kind of checkpoint loads, its card holds every number with seeds and provenance, bad input fails in one line."
import json
import pytest
import torch
from torch import nn
from s2vc_repro.card import report_card, load_model, torchvision_model, weights_digest, LoadError, KINETICS_MEAN
from s2vc_repro.cli import main
from s2vc_repro.records import file_digest

SMALL = dict(n_train=16, n_test=8, seeds=(0, 1, 2))  # 16 training videos (2 per class), 8 per evaluation split


def _check_card(d, card, frames, size, reference=True):
    "The files of a card, and the JSON: every metric per seed, the headline inside its interval, the input as asked."
    assert {p.name for p in d.iterdir()} >= {'card.md', 'card.html', 'card.json', 'card.png'}
    j = json.loads((d/'card.json').read_text())
    assert j['input']['frames'] == frames and j['input']['size'] == size
    assert j['testbed']['synth']['size'] == size and j['testbed']['synth']['frames'] == round(2.5 * frames * j['testbed']['stride']) and j['testbed']['clips'] == 2
    for m in ('standard', 'aligned', 'conflicting', 'static', 'shuffled', 'scene_share', 'motion_share'):
        r = j['rows']['model'][m]
        assert len(r['per_seed']) == 3 and all(0 <= v <= 1 for v in r['per_seed']) and r['mean'] == pytest.approx(sum(r['per_seed']) / 3)
    h = j['headline']['scene_share']
    assert h['ci95'][0] <= h['value'] <= h['ci95'][1] and h['n_videos'] == 8 and h['n_seeds'] == 3
    assert (j['reference'] is not None) == reference and ('difference_ci95' in h) == reference
    assert torch.__version__.startswith(j['provenance']['versions']['torch']) and len(j['model']['weights_digest']) == 64
    md = (d/'card.md').read_text()
    assert all(s in md for s in j['reading']) and f"{100 * h['value']:.1f}%" in md
    assert '<table>' in (d/'card.html').read_text()
    return j


def test_store_run_card(tmp_path, one_thread):
    "A run trained by the store (smoke profile, one epoch on random clips), by its folder and by its method name."
    from s2vc_repro.config import get_config
    from s2vc_repro.runs import RunStore
    cfg = get_config('smoke')
    run = RunStore(tmp_path/'runs', dataset='s2vc_repro.train:random_clips', echo=False).pretrain(cfg)
    card = report_card(run, tmp_path/'card', data_root=tmp_path/'data', **SMALL)
    j = _check_card(tmp_path/'card', card, cfg.data.frames, cfg.data.size)
    assert j['model']['kind'] == 'run' and j['model']['sha256'] == file_digest(run/'backbone.pt') and j['model']['config_hash'] == cfg.hash
    assert 'config.yaml' in j['input']['source'] and j['real']['ucf101']['status'] == 'not prepared'
    assert load_model('moco', runs=tmp_path/'runs', profile='smoke').info['run'] == str(run)


def test_torchvision_state_dicts_with_wrappers(tmp_path, one_thread):
    "r3d_18 saved under 'state_dict' with 'module.encoder_q.' (MoCo's layout), r2plus1d_18 and s3d as plain torchvision state dicts."
    src = torchvision_model('r3d_18', seed=5).net
    torch.save({'state_dict': {f'module.encoder_q.{k}': v for k, v in src.state_dict().items()}, 'epoch': 9}, tmp_path/'r3d.pth')
    m = load_model(tmp_path/'r3d.pth', 'r3d_18', frames=4, size=16)
    assert weights_digest(m.net) == weights_digest(src)  # every weight arrived
    assert m.info['unwrapped'] == ["['state_dict']", "prefix 'module.'", "prefix 'encoder_q.'"]
    card = report_card(tmp_path/'r3d.pth', tmp_path/'r3d', arch='r3d_18', frames=4, size=16, data_root=tmp_path, **SMALL)
    j = _check_card(tmp_path/'r3d', card, 4, 16)
    assert j['model']['sha256'] == file_digest(tmp_path/'r3d.pth') and j['input']['mean'] == list(KINETICS_MEAN)
    assert j['input']['source'].startswith('torchvision weights meta') and j['reference']['name'] == 'r3d_18 random init'
    for arch, frames, size in (('r2plus1d_18', 4, 16), ('s3d', 8, 32)):
        torch.save(torchvision_model(arch, seed=3).net.state_dict() if arch != 's3d' else _full_state(arch), tmp_path/f'{arch}.pt')
        card = report_card(tmp_path/f'{arch}.pt', tmp_path/arch, arch=arch, frames=frames, size=size, reference=False, data_root=tmp_path, **SMALL)
        j = _check_card(tmp_path/arch, card, frames, size, reference=False)
        assert j['model']['arch'] == arch and j['model']['feat_dim'] == (512 if arch == 'r2plus1d_18' else 1024)


def _full_state(arch):
    "A torchvision model's own state dict, classifier head included (as a Kinetics release has it)."
    from torchvision.models import get_model
    torch.manual_seed(2)
    return get_model(arch, weights=None).state_dict()


def test_wrong_layout_fails_in_one_line(tmp_path):
    sd = torchvision_model('r3d_18').net.state_dict()
    bad = {('trunk.' + k if k.startswith('layer4.') else k): v for k, v in sd.items()}
    bad['stem.0.weight'] = torch.zeros(8, 3, 3, 7, 7)
    torch.save(bad, tmp_path/'bad.pt')
    with pytest.raises(LoadError) as e: load_model(tmp_path/'bad.pt', 'r3d_18')
    msg = str(e.value)
    assert '\n' not in msg and msg.startswith('bad.pt (as r3d_18) does not match VideoResNet: ')
    assert 'missing [layer4.' in msg and 'unexpected [trunk.layer4.' in msg and 'of another shape [stem.0.weight (8, 3, 3, 7, 7) vs (64, 3, 3, 7, 7)]' in msg
    assert main(['card', str(tmp_path/'bad.pt'), '--model', 'r3d_18']) == 1
    with pytest.raises(LoadError, match='valid models: .*r3d_18'): load_model(tmp_path/'bad.pt', 'resnet50')


def _write_tiny(path):
    path.write_text("import torch, torch.nn as nn\n"
                    "def net():\n"
                    "    torch.manual_seed(0)\n"
                    "    m = nn.Sequential(nn.Conv3d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv3d(8, 8, 3, stride=2))\n"
                    "    m.input_frames, m.input_size = 4, 16\n"
                    "    return m\n")


def test_module_function_and_torchscript_from_the_command_line(tmp_path, one_thread, capsys):
    _write_tiny(tmp_path/'tiny.py')
    args = ['--videos', '16', '--test-videos', '8', '--data', str(tmp_path/'data')]
    assert main(['card', f'{tmp_path}/tiny.py:net', '--out', str(tmp_path/'fn'), *args]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == str(tmp_path/'fn'/'card.md') and 'after a class of their scene' in out
    j = _check_card(tmp_path/'fn', None, 4, 16)
    assert j['model']['kind'] == 'callable' and 'its input_frames, input_size' in j['input']['source']
    net = load_model(f'{tmp_path}/tiny.py:net').net
    torch.jit.script(net).save(str(tmp_path/'tiny.ts'))
    assert main(['card', str(tmp_path/'tiny.ts'), '--out', str(tmp_path/'ts'), '--size', '24', *args]) == 0
    j = _check_card(tmp_path/'ts', None, 4, 24, reference=False)
    assert j['model']['kind'] == 'torchscript' and j['model']['sha256'] == file_digest(tmp_path/'tiny.ts')


def test_features_are_extracted_once_and_cached(tmp_path, monkeypatch, one_thread):
    _write_tiny(tmp_path/'tiny.py')
    kw = dict(data_root=tmp_path, cache=tmp_path/'cache', **SMALL)
    a = report_card(f'{tmp_path}/tiny.py:net', **kw)
    import s2vc_repro.evaluate as ev
    monkeypatch.setattr(ev, 'extract_features', lambda *a, **k: pytest.fail('features must be read from the cache'))
    b = report_card(f'{tmp_path}/tiny.py:net', **kw)
    assert a['rows'] == b['rows'] and a['headline'] == b['headline']
    with pytest.raises(pytest.fail.Exception): report_card(f'{tmp_path}/tiny.py:net', **{**kw, 'size': 20})  # another input: new features


class FirstFrameColour(nn.Module):
    "Features that see the scene only: colour statistics of the first frame."
    input_frames, input_size = 4, 32
    def __init__(self): super().__init__(); self.scale = nn.Parameter(torch.ones(1))
    def forward(self, x):
        f = x[:, :, 0]
        return torch.cat([f.mean((2, 3)), f.std((2, 3)), f.amax((2, 3)), f.amin((2, 3))], 1) * self.scale


def test_a_scene_only_model_reads_as_scene_reliant(tmp_path):
    "The card's numbers mean what they say: a model that sees one frame's colours names conflicting videos after their scene."
    card = report_card(FirstFrameColour(), n_train=64, n_test=32, reference=False, data_root=tmp_path)
    r, h = card['rows']['model'], card['headline']
    assert h['scene_share']['value'] > 0.6 and h['motion_share']['value'] < 0.3
    assert abs(r['static']['mean'] - r['standard']['mean']) < 0.15 and abs(r['shuffled']['mean'] - r['standard']['mean']) < 0.15
    assert 'follows its scene more often' in card['reading'][0]


def test_transformers_videomae_folder(tmp_path, one_thread):
    transformers = pytest.importorskip('transformers')
    cfg = transformers.VideoMAEConfig(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, intermediate_size=64)
    transformers.VideoMAEModel(cfg).save_pretrained(tmp_path/'videomae')
    card = report_card(tmp_path/'videomae', tmp_path/'card', data_root=tmp_path, **SMALL)
    j = _check_card(tmp_path/'card', card, 4, 32)
    assert j['model']['kind'] == 'transformers' and j['model']['feat_dim'] == 32 and 'config.json' in j['input']['source']


def test_real_dataset_probes_when_prepared(tmp_path, one_thread):
    "A prepared UCF101-style folder is probed (whole clips, static frame, shuffled frames, per-class gain); HMDB51 absent is reported with its command."
    from s2vc_repro.config import SynthCfg
    from s2vc_repro.data.synthetic import write_benchmark
    write_benchmark(tmp_path, SynthCfg(n_train=16, n_test=8, frames=12, size=32), workers=0, variants=('ucf',), progress=False)
    (tmp_path/'synth-ucf').rename(tmp_path/'ucf101')  # the UCF101 layout: classInd, trainlist01 / testlist01, videos/<class>/
    _write_tiny(tmp_path/'tiny.py')
    card = report_card(f'{tmp_path}/tiny.py:net', tmp_path/'card', reference=False, data_root=tmp_path, **SMALL)
    u, h = card['real']['ucf101'], card['real']['hmdb51']
    assert u['status'] == 'probed' and u['videos'] == {'train': 16, 'test': 8} and len(u['identity']['train']['digest']) == 16
    assert all(len(u['rows'][k]['per_seed']) == 3 for k in ('full', 'static', 'shuffled'))
    pc = u['per_class']
    assert len(pc['classes']) == 8 and pc['gain'] == pytest.approx([f - s for f, s in zip(pc['full'], pc['static'])], nan_ok=True)
    assert h == {**h, 'status': 'not prepared', 'command': f's2vc-repro data prepare hmdb51 --root {tmp_path}'}
    md = (tmp_path/'card'/'card.md').read_text()
    assert '| ucf101 | ' in md and '(card-ucf101-gain.png)' in md and (tmp_path/'card'/'card-ucf101-gain.png').is_file()
    assert any(s.startswith('On ucf101 the static frame gives') for s in card['reading']) and f'hmdb51: not prepared: `{h["command"]}`' in md
