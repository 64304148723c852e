"""What a scene-bias card costs: wall time of `report_card` with the default testbed (800 training videos, 200 per
evaluation split, 3 probe seeds, the random-init reference row), first with an empty feature cache, then again with it filled.

    python benchmarks/card_cost.py                    # both models
    python benchmarks/card_cost.py --only small       # the 0.3 M-parameter mini backbone (cnn4s, width 0.5, 8x32x32)
    python benchmarks/card_cost.py --only r2plus1d    # torchvision R(2+1)D-18 at 16x112x112 (random weights from a state-dict file)
    python benchmarks/card_cost.py --only r2plus1d --json benchmarks/results/card_cost_r2plus1d.json   # and keep the numbers

Features are extracted in the card's default precision (`--precision auto`: bfloat16 autocast where the device computes
it natively, float32 elsewhere); the card and the JSON say which.

The targets (issue 31): a 0.3 M-parameter model <= 2 min and R(2+1)D-18 at 16x112x112 <= 30 min on a 2-core CPU; <= 5 min on one GPU.
"""
import argparse, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path
import torch
from s2vc_repro.card import report_card, torchvision_model, PRECISIONS
from s2vc_repro.config import get_config, to_yaml
from s2vc_repro.backbones import build_backbone, n_params


def small_run(d: Path) -> Path:
    "A store-like run folder of the mini profile's backbone (cnn4s, width 0.5) with random weights."
    cfg = get_config('mini'); d.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    (d/'config.yaml').write_text(to_yaml(cfg))
    torch.save(build_backbone(cfg.model.backbone, cfg.model.width).state_dict(), d/'backbone.pt')
    return d


def r2plus1d_file(d: Path) -> Path:
    "A torchvision R(2+1)D-18 state-dict file with random weights."
    torch.save(torchvision_model('r2plus1d_18', seed=0).net.state_dict(), d/'r2plus1d_18.pt')
    return d/'r2plus1d_18.pt'


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--only', choices=['small', 'r2plus1d'], help='measure one model only')
    ap.add_argument('--videos', type=int, default=800, help='testbed training videos (default: 800)')
    ap.add_argument('--test-videos', type=int, default=200, help='videos of each evaluation split (default: 200)')
    ap.add_argument('--device', default=None)
    ap.add_argument('--precision', default='auto', choices=PRECISIONS, help='feature precision (default: auto)')
    ap.add_argument('--json', metavar='PATH', help='also write the numbers here')
    a = ap.parse_args()
    load, results = os.getloadavg(), []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = {'small': lambda: (small_run(tmp/'mini-run'), {}),
                 'r2plus1d': lambda: (r2plus1d_file(tmp), dict(arch='r2plus1d_18'))}
        for name in ([a.only] if a.only else list(cases)):
            ckpt, kw = cases[name]()
            times = []
            for _ in range(2):  # empty cache, then filled
                t = time.time()
                card = report_card(ckpt, tmp/f'card-{name}', n_train=a.videos, n_test=a.test_videos, data_root=tmp/'no-data', device=a.device,
                                   precision=a.precision, **kw)
                times.append(time.time() - t)
            m, sp = card['model'], card['input']
            print(f"{name}: {m['arch']}, {m['params'] / 1e6:.2f} M parameters, {sp['frames']}x{sp['size']}x{sp['size']} clips, "
                  f"{a.videos} + 5x{a.test_videos} videos, 3 probe seeds, reference row: card {times[0]:.1f} s (empty cache), "
                  f"{times[1]:.1f} s (cache filled) on {card['provenance']['device']}; torch threads {torch.get_num_threads()}; "
                  f"features {card['features']['precision']}, {card['features']['batchnorm_folded']} BatchNorm folded", flush=True)
            results.append(dict(case=name, arch=m['arch'], params=m['params'], input=[sp['frames'], sp['size'], sp['size']], train_videos=a.videos,
                                eval_videos=5 * a.test_videos, clips_per_video=card['testbed']['clips'], probe_seeds=len(card['probe']['seeds']),
                                reference=card['reference'] is not None, features=card['features'], card_empty_cache_s=round(times[0], 1),
                                card_cache_filled_s=round(times[1], 1), device=card['provenance']['device'], torch_threads=torch.get_num_threads()))
    if a.json:
        git = lambda *c: subprocess.run(['git', *c], capture_output=True, text=True).stdout.strip()
        Path(a.json).write_text(json.dumps(dict(command='python benchmarks/card_cost.py ' + ' '.join(sys.argv[1:]), results=results,
            commit=git('rev-parse', '--short', 'HEAD'), dirty=bool(git('status', '--porcelain', '--untracked-files=no')),
            machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores", load_avg_at_start=[round(x, 2) for x in load],
            torch=torch.__version__, date=time.strftime('%Y-%m-%d')), indent=1) + '\n')


if __name__ == '__main__':
    main()
