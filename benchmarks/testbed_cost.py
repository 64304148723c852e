"""What one run of the testbed costs: pretraining time of every bench-bias row (one seed) against MoCo's, and the bias evaluation.

    python benchmarks/testbed_cost.py --runs /tmp/cost-runs      # an empty store: every run is trained here, one at a time
    python benchmarks/testbed_cost.py --runs runs                 # a filled store: the recorded times are read back

The testbed's budget (so that the papers' ~60 ablation runs stay affordable on a 2-core CPU): MoCo pretraining
<= 60 s, every other method <= 4x MoCo, bias evaluation <= 20 s a run. For a run trained by this command,
'total s' is the whole call (subprocess start, data probe, training, saving); 'train s' is the training loop as
recorded in done.json. S2VC's flow is trained once per profile, before the first S2VC run, and listed apart.
"""
import argparse, json, time
import pandas as pd, torch
from s2vc_repro.config import get_config
from s2vc_repro.runs import RunStore
from s2vc_repro.data.synthetic import ensure_benchmark

ROWS = {  # bench-bias row -> overrides (the rows of nbs/papers/bench/bench-bias.ipynb)
    'MoCo': {'method.name': 'moco'},
    'Supervised (clips)': {'method.name': 'supervised'},
    'Supervised (static)': {'method.name': 'supervised', 'method.input': 'static'},
    'Difference positive': {'method.name': 'diff-positive'},
    'S2VC': {'method.name': 's2vc'},
    'TFD': {'method.name': 'tfd'},
    'DSM': {'method.name': 'dsm'},
    'DSM (Triplet)': {'method.name': 'dsm-triplet'},
    'DCLR': {'method.name': 'dclr'},
    'Static positive': {'method.name': 'static-positive'},
}

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--profile', default='mini')
    ap.add_argument('--runs', required=True, help='run store (runs that exist are read, missing ones trained)')
    ap.add_argument('--data', default=None, help="data root (default: the profile's)")
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--rows', nargs='*', default=list(ROWS), help='bench-bias rows to measure')
    a = ap.parse_args()
    base = get_config(a.profile, {'train.seed': a.seed, **({'data.root': a.data} if a.data else {})})
    ensure_benchmark(base.data.root, base.synth)
    store, out = RunStore(a.runs, echo=False), []
    for row in a.rows:
        cfg = base.replace(**ROWS[row])
        fresh = store.status(cfg) != 'complete'
        t0 = time.time(); d = store.pretrain(cfg); total = time.time() - t0
        done = json.loads((d/'done.json').read_text())
        t1 = time.time(); store.evaluate(cfg, ('bias',), datasets=(cfg.data.dataset,)); ev = time.time() - t1
        rec = [json.loads(p.read_text())['provenance']['wall_time'] for p in sorted((d/'eval').glob('bias-*.json'))]
        out.append(dict(row=row, method=cfg.method.name, trained_here=fresh, total_s=round(total, 1) if fresh else None,
                        train_s=round(done['wall_time'], 1), clips_per_s=round(done.get('clips_per_s') or 0, 1),
                        bias_eval_s=round(rec[-1] if rec else ev, 1)))
        print(out[-1], flush=True)
    df = pd.DataFrame(out)
    moco = df.loc[df.row == 'MoCo', 'train_s']
    if len(moco): df['x MoCo'] = (df.train_s / float(moco.iloc[0])).round(2)
    print(f"\nprofile {a.profile}, seed {a.seed}, torch threads {torch.get_num_threads()}, store {a.runs}")
    print(df.to_string(index=False))
    if 'S2VC' in a.rows:
        fd = store.flow_dir(base.replace(**ROWS['S2VC']))/'done.json'
        if fd.exists(): print(f"flow (once per profile): {json.loads(fd.read_text())['wall_time']:.1f} s")
    targets = [('MoCo pretraining <= 60 s', float(moco.iloc[0]) <= 60 if len(moco) else None)]
    if 'x MoCo' in df: targets.append(('every other method <= 4x MoCo', bool((df['x MoCo'] <= 4).all())))
    targets.append(('bias evaluation <= 20 s a run', bool((df.bias_eval_s <= 20).all())))
    for name, ok in targets: print(f"{name}: {'holds' if ok else 'does not hold' if ok is not None else 'not measured'}")

if __name__ == '__main__': main()
