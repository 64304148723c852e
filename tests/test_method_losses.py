"The loss of every method's `training_step` on a fixed seed and batch, pinned: refactoring a method must not change it."
import pytest, torch
from s2vc_repro.config import get_config
from s2vc_repro.augment import ClipAugment
from s2vc_repro.methods.base import build_method, method_class

B, SIDE = 4, 20  # clips per batch, frame side (smoke: 16-pixel crops of 20-pixel frames)

CASES = {  # name -> (overrides, steps)
    'moco': ({}, 3),
    'static-positive': ({}, 2),
    'diff-positive': ({}, 2),
    'supervised': ({}, 2),
    'tfd': ({}, 2),
    's2vc': ({'s2vc.alpha': 0.01}, 2),  # an untrained flow's latents hardly vary: a low threshold keeps some
    'dsm': ({'dsm.negative': 'mdisturb'}, 2),
    'dsm-triplet': ({'dsm.negative': 'tshift'}, 2),
    'dclr': ({}, 3),  # step 2 on searches the queue written by the steps before it
    'dclr-joint': ({'dclr.search': 'joint', 'dclr.losses': ('vv', 'vs', 'vd', 'sd')}, 3),
}

# losses of steps 1..n, recorded with the code before the methods were split into functions
GOLDEN = {
    'moco': [0.0026810786221176386, 2.16226863861084, 2.9499480724334717],
    'static-positive': [0.0026587145403027534, 2.1957876682281494],
    'diff-positive': [0.003957848530262709, 1.9275227785110474],
    'supervised': [2.1466405391693115, 2.096437931060791],
    'tfd': [0.0007334527908824384, 1.7213395833969116],
    's2vc': [0.0009665051475167274, 1.7565906047821045],
    'dsm': [0.7285118699073792, 1.592370629310608],
    'dsm-triplet': [0.4679409861564636, 0.3597761392593384],
    'dclr': [5.825655460357666, 4.999549865722656, 5.966588497161865],
    'dclr-joint': [11.190251350402832, 11.188425064086914, 9.70218276977539],
}


def _batch(cfg, mode, step):
    g = torch.Generator().manual_seed(100 + step)
    T = cfg.data.frames + (1 if cfg.method.name in ('dclr', 'diff-positive') else 0)
    shape = (B, 2, 3, T, SIDE, SIDE) if mode == 'pair' else (B, 3, T, SIDE, SIDE)
    b = dict(video=torch.randint(0, 256, shape, dtype=torch.uint8, generator=g),
             label=torch.randint(0, cfg.synth.n_classes, (B,), generator=g), index=torch.arange(step * B, step * B + B))
    if cfg.method.name.startswith('dsm'):
        b['negative'] = torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)
        b['flow'] = (torch.randn((B, T - 1, SIDE, SIDE, 2), generator=g)).half()
    return b


def losses(case: str) -> list:
    "Losses of `steps` SGD steps of method `case` from seed 0 on fixed random batches."
    over, steps = CASES[case]
    name = case.split('-joint')[0]
    cfg = get_config('smoke', {'method.name': name, 'train.amp': False, **over})
    torch.manual_seed(0)
    method = build_method(cfg, **method_class(name).stand_ins(cfg))
    aug = ClipAugment(cfg.aug, cfg.data.size, seed=1)
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.05)
    method.train(); method.on_epoch_start(0)
    out = []
    for s in range(steps):
        loss = method.training_step(_batch(cfg, method.data_mode, s), aug)['loss']
        opt.zero_grad(); loss.backward(); opt.step(); method.after_step()
        out.append(float(loss.detach()))
    return out


@pytest.mark.parametrize('case', list(CASES))
def test_loss_is_pinned(case, one_thread):
    got = losses(case)
    assert len(got) == CASES[case][1] and all(map(lambda x: x == x, got)), got
    assert got == pytest.approx(GOLDEN[case], rel=1e-5, abs=1e-6), f"{case}: {got} != {GOLDEN[case]}"


if __name__ == '__main__':  # print the values to pin
    torch.set_num_threads(1)
    for c in CASES: print(f"    {c!r}: {losses(c)},")
