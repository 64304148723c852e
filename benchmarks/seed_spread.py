"""How much one bench-bias row moves between pre-training seeds, under the mini recipe or a variant of it.

    python benchmarks/seed_spread.py --runs /tmp/spread                                   # MoCo, seeds 0-4, the mini recipe
    python benchmarks/seed_spread.py --runs /tmp/spread --set train.epochs=24             # the same with twice the steps
    python benchmarks/seed_spread.py --runs /tmp/spread --set train.batch_size=16 method.queue=176 method.momentum=0.997

For each seed: the bias evaluation (linear probe on the biased training labels: standard, aligned, conflicting and
static splits, %), the final instance-discrimination accuracy of the pre-training (`done.json`) and its training time.
Then the mean and std over the first three seeds and over all of them, and the controls of testbed v2 that need this
row alone: std of the standard split <= 5 points, and for MoCo aligned - conflicting >= 20 points. A variant's queue
and momentum are not derived again from its batch size: pass them (`s2vc_repro.config.scale_videos` / `scale_momentum`).
"""
import argparse, json
import pandas as pd
from s2vc_repro.cli import parse_sets
from s2vc_repro.config import get_config
from s2vc_repro.runs import RunStore
from s2vc_repro.data.synthetic import ensure_benchmark

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--profile', default='mini')
    ap.add_argument('--runs', required=True, help='run store (runs that exist are read, missing ones trained)')
    ap.add_argument('--data', default=None, help="data root (default: the profile's)")
    ap.add_argument('--method', default='moco', help='method of the row (default: moco)')
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    ap.add_argument('--set', nargs='*', default=[], metavar='KEY=VALUE', help='config overrides, e.g. train.epochs=24')
    a = ap.parse_args()
    over = {'method.name': a.method, **parse_sets(a.set), **({'data.root': a.data} if a.data else {})}
    store, rows = RunStore(a.runs, echo=False), []
    base = get_config(a.profile, over)
    ensure_benchmark(base.data.root, base.synth)  # one benchmark for every seed (its own seed is `synth.seed`)
    for seed in a.seeds:
        cfg = base.replace(**{'train.seed': seed})
        d = store.pretrain(cfg)
        m = store.evaluate(cfg, ('bias',), datasets=(cfg.data.dataset,))
        done = json.loads((d/'done.json').read_text())
        get = lambda k: 100 * m[f'{cfg.data.dataset}/bias/{k}']
        rows.append(dict(seed=seed, standard=get('standard'), aligned=get('aligned'), conflicting=get('conflicting'),
                         static=get('static'), instance_acc=100 * (done.get('final') or {}).get('acc', float('nan')),
                         train_s=done['wall_time'], run=d.name))
        print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in rows[-1].items()}), flush=True)
    df = pd.DataFrame(rows)
    df['aligned - conflicting'] = df.aligned - df.conflicting
    print(f"\n{a.method} at {a.profile} with {' '.join(a.set) or 'the profile recipe'}, store {a.runs}")
    print(df.round(1).to_string(index=False))
    for name, part in (('seeds ' + ','.join(map(str, a.seeds[:3])), df.head(3)), ('all seeds', df)):
        cols = ['standard', 'conflicting', 'aligned - conflicting']
        print(f"{name}: " + ', '.join(f"{c} {part[c].mean():.1f} ± {part[c].std(ddof=1):.1f}" for c in cols))
    first, seeds = df.head(3), ','.join(map(str, a.seeds[:3]))
    line = f"std of standard <= 5 (seeds {seeds}): {'holds' if first.standard.std(ddof=1) <= 5 else 'does not hold'}"
    if a.method == 'moco': line += f"; aligned - conflicting >= 20: {'holds' if first['aligned - conflicting'].mean() >= 20 else 'does not hold'}"
    print(line + ('' if a.method == 'moco' else " (this row's other controls compare with MoCo's: see bench-bias)"))

if __name__ == '__main__': main()
