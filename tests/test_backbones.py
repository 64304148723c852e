"Video backbones: parameter counts against torchvision / the layer tables, shapes at paper and mini sizes, full-size forward passes."
import os
import pytest
import torch
from torch import nn
import torchvision.models.video as tvv
from s2vc_repro.config import BACKBONES, ConfigError
from s2vc_repro.backbones import build_backbone, count_params, feature_shape, n_params, C3D

HEAVY = pytest.mark.skipif(os.environ.get('S2VC_SLOW_TESTS') != '1',
                           reason='16x224x224 forward pass of R3D-34 on CPU (~20 s); set S2VC_SLOW_TESTS=1 to run')
MINI = (16, 32, 32)
# feature map (C, T', H', W') at each backbone's paper input size
PAPER_FMAP = {'cnn4': (256, 2, 4, 4), 'cnn4s': (256, 2, 4, 4), 's3d': (1024, 4, 4, 4), 'r3d18': (512, 2, 7, 7), 'r2plus1d18': (512, 2, 7, 7),
              'c3d': (512, 2, 7, 7), 'i3d': (1024, 2, 7, 7), 'r3d34': (512, 2, 14, 14)}
MINI_FMAP = {'cnn4': (64, 2, 4, 4), 'cnn4s': (64, 2, 4, 4), 's3d': (256, 2, 1, 1), 'r3d18': (128, 2, 2, 2), 'r2plus1d18': (128, 2, 2, 2),
             'c3d': (128, 2, 2, 2), 'i3d': (256, 2, 1, 1), 'r3d34': (128, 2, 2, 2)}  # width 0.25

def tv_params(fn, **kw):
    with torch.device('meta'): return n_params(fn(**kw))

def test_unknown_name_lists_choices():
    with pytest.raises(ConfigError) as e: build_backbone('resnet9000')
    assert 'resnet9000' in str(e.value) and all(n in str(e.value) for n in BACKBONES)
    with pytest.raises(ConfigError): build_backbone('r3d18', width=0)

def test_every_backbone_has_its_facts():
    assert all({'input', 'feat_dim', 'head', 'params', 'published'} <= set(BACKBONES.info(n)) for n in BACKBONES)

@pytest.mark.parametrize('name', list(BACKBONES))
def test_param_count_is_pinned(name):
    spec = BACKBONES.info(name)
    kw = dict(fc=True, bn=False) if name == 'c3d' else {}
    assert count_params(name, num_classes=spec['head'], **kw) == spec['params']
    if spec['published']:  # torchvision's documented counts exactly; I3D's two-digit figure within 2%
        assert abs(spec['params'] / spec['published'][0] - 1) < 0.02

def test_torchvision_counts():
    assert count_params('r3d18', num_classes=400) == tv_params(tvv.r3d_18) == 33_371_472
    assert count_params('r2plus1d18', num_classes=400) == tv_params(tvv.r2plus1d_18) == 31_505_325
    assert count_params('s3d', num_classes=400) == tv_params(tvv.s3d) == 8_320_048
    assert count_params('s3d') == 8_320_048 - (1024 * 400 + 400)  # 7.91M without the head

def _block(c):  # a BasicBlock without downsampling: two 3x3x3 convs + two BNs
    return 2 * (27 * c * c + 2 * c)

def test_r3d34_count_layer_by_layer():
    "R3D-34 = R3D-18 plus 1, 2, 4, 1 extra blocks in stages 1-4 (BasicBlock [3,4,6,3] vs [2,2,2,2])."
    extra = _block(64) + 2 * _block(128) + 4 * _block(256) + _block(512)
    assert count_params('r3d34', num_classes=400) == count_params('r3d18', num_classes=400) + extra
    assert abs(count_params('r3d34', num_classes=400) / 63.7e6 - 1) < 0.01

def test_c3d_count_layer_by_layer():
    "Tran et al. 2015: 8 convs (64,128,256,256,512,512,512,512), fc6/fc7 4096 on the 512x1x4x4 pool5 map."
    chans = (3, 64, 128, 256, 256, 512, 512, 512, 512)
    conv = sum(27 * a * b + b for a, b in zip(chans[:-1], chans[1:]))
    fc67 = (512 * 16 * 4096 + 4096) + (4096 * 4096 + 4096)
    assert count_params('c3d', fc=True, bn=False) == conv + fc67  # 78.0M
    assert count_params('c3d', num_classes=487, fc=True, bn=False) == conv + fc67 + 4096 * 487 + 487  # 80.0M
    assert abs((conv + fc67 + 4096 * 101 + 101) / 78.4e6 - 1) < 0.001  # 78.4M with a 101-way head
    assert abs(count_params('c3d') / 27.66e6 - 1) < 0.01  # the conv encoder used by the SSL papers (with BN)

def test_i3d_count():
    "Inception-v1-BN inflated: 12.29M without head, 12.70M with 400 classes (two streams: 25.4M vs the paper's 25M)."
    assert abs(count_params('i3d') / 12.29e6 - 1) < 0.001
    assert abs(2 * count_params('i3d', num_classes=400) / 25e6 - 1) < 0.02

@pytest.mark.parametrize('name', list(BACKBONES))
def test_width_scales_params(name):
    assert count_params(name, 0.25) < count_params(name) / 8
    assert build_backbone(name, 0.25).feat_dim == MINI_FMAP[name][0]

@pytest.mark.parametrize('name', list(BACKBONES))
def test_paper_size_shapes_meta(name):
    assert feature_shape(name, BACKBONES.info(name)['input']) == PAPER_FMAP[name]
    assert build_backbone(name).feat_dim == BACKBONES.info(name)['feat_dim'] == PAPER_FMAP[name][0]

@pytest.mark.parametrize('name', list(BACKBONES))
def test_mini_forward_backward(name):
    torch.manual_seed(0)
    width = 1.0 if name in ('cnn4', 'cnn4s') else 0.25
    m = build_backbone(name, width).eval()
    x = torch.randn(2, 3, *MINI)
    with torch.no_grad(): fm, z = m.features(x), m(x)
    want = PAPER_FMAP[name] if name in ('cnn4', 'cnn4s') else MINI_FMAP[name]
    assert tuple(fm.shape) == (2, *want)
    assert z.shape == (2, m.feat_dim) and torch.isfinite(z).all()
    torch.testing.assert_close(z, fm.mean((2, 3, 4)))  # forward = global average of the feature map
    h = build_backbone(name, width, num_classes=7, dropout=0.5)
    assert isinstance(h.drop, nn.Dropout)
    h(x).logsumexp(1).mean().backward()
    assert all(p.grad is not None for p in h.parameters()), 'some parameters got no gradient'

def test_smoke_size_and_odd_sizes():
    m = build_backbone('cnn4', 0.5).eval()
    assert m.features(torch.randn(2, 3, 8, 16, 16)).shape == (2, 128, 1, 2, 2)
    with torch.no_grad():
        for name in BACKBONES:
            net = build_backbone(name, 0.125).eval()
            assert net(torch.randn(1, 3, 9, 37, 29)).shape == (1, net.feat_dim)

def test_c3d_fc_variant():
    m = C3D(width=0.25, fc=True, num_classes=5)
    assert m.feat_dim == 1024 and m(torch.randn(2, 3, 16, 112, 112)).shape == (2, 5)

def test_torchvision_weights_load():
    "At width 1 the networks are torchvision's: its state dicts (e.g. Kinetics weights) load strictly."
    build_backbone('r3d18', num_classes=400).load_state_dict(tvv.r3d_18().state_dict())
    build_backbone('r2plus1d18', num_classes=400).load_state_dict(tvv.r2plus1d_18().state_dict())
    build_backbone('s3d').body.load_state_dict(tvv.s3d().features.state_dict())  # S3D: the conv part

def test_torchvision_s3d_needs_224_but_ours_does_not():
    x = torch.empty(1, 3, 32, 128, 128, device='meta')
    with torch.device('meta'):
        with pytest.raises(RuntimeError): tvv.s3d()(x)
        assert build_backbone('s3d', num_classes=400)(x).shape == (1, 400)

def _full_forward(name):
    spec = BACKBONES.info(name)
    torch.manual_seed(0)
    m = build_backbone(name, num_classes=400).eval()
    with torch.no_grad():
        x = torch.randn(1, 3, *spec['input'])
        fm = m.features(x)
        assert tuple(fm.shape[1:]) == PAPER_FMAP[name]
        y = m.fc(m.embed(fm))
    assert y.shape == (1, 400) and torch.isfinite(y).all()

@pytest.mark.parametrize('name', ['s3d', 'r3d18', 'r2plus1d18', 'c3d', 'i3d'])
def test_full_size_forward(name): _full_forward(name)

@HEAVY
def test_full_size_forward_r3d34(): _full_forward('r3d34')
