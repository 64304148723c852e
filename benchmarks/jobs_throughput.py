"""Two short pre-trainings made one at a time on all the threads against two at once on one thread each.

    python benchmarks/jobs_throughput.py                 # 2 mini MoCo runs of 20 steps, random clips
    python benchmarks/jobs_throughput.py --steps 40 --method diff-positive --json out.json

Each layout makes the same two runs (seeds 0 and 1) through the run store and `LocalExecutor`, each run in
its own process as `reproduce` makes them: `1 x N` is `LocalExecutor(1, threads=N)` (N = the cores), `2 x 1`
is `LocalExecutor(2, threads=1)`; `--jobs auto` gives the second on a 2-core machine when two runs are ready.
The clips are random (`RandomClips`, mini's shape) so no data set is needed. Printed per layout: the wall time
of the two runs, their steps per second, and each run's own training time (`done.json` `wall_time`); the
remainder is process start, imports and saving. On a machine shared with other work the figures move from
one call to the next: compare layouts within one call.
"""
import argparse, json, os, sys, tempfile, time
from pathlib import Path

STEPS = int(os.environ.get('S2VC_BENCH_STEPS', '20'))

def clips(cfg, mode):
    "The dataset factory of the benchmark's runs: `STEPS` batches of random clips of `cfg`'s shape."
    from s2vc_repro.train import RandomClips
    return RandomClips(STEPS * cfg.train.batch_size, mode, cfg.data.frames, cfg.data.resize or cfg.data.size, cfg.synth.n_classes, seed=cfg.train.seed)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--profile', default='mini')
    ap.add_argument('--method', default='moco')
    ap.add_argument('--steps', type=int, default=20, help='optimiser steps per run (one epoch)')
    ap.add_argument('--json', default=None, help='also write the results to this JSON file')
    a = ap.parse_args(argv)
    os.environ['S2VC_BENCH_STEPS'] = str(a.steps)
    os.environ['PYTHONPATH'] = os.pathsep.join([str(Path(__file__).resolve().parent), os.environ.get('PYTHONPATH', '')])  # the jobs import `clips`
    from s2vc_repro.config import get_config
    from s2vc_repro.executors import LocalExecutor
    from s2vc_repro.runs import RunStore
    cores = os.cpu_count() or 1
    cfgs = [get_config(a.profile, {'method.name': a.method, 'train.epochs': 1, 'train.warmup_epochs': 0, 'train.seed': s}) for s in (0, 1)]
    rows = []
    for name, ex in ((f'1 x {cores} threads', LocalExecutor(1, gpus=[], threads=cores)), ('2 x 1 thread', LocalExecutor(2, gpus=[], threads=1))):
        with tempfile.TemporaryDirectory() as d:
            store = RunStore(d, dataset='jobs_throughput:clips', echo=False, executor=ex)
            jobs = [store.job(c) for c in cfgs]
            t0 = time.time(); res = ex.run(jobs, store); wall = time.time() - t0
            bad = {k: str(v).splitlines()[0] for k, v in res.items() if v is not None}
            if bad: sys.exit(f'{name}: a run failed: {bad}')
            train_s = [json.loads((j.dir/'done.json').read_text())['wall_time'] for j in jobs]
        rows.append(dict(layout=name, wall_s=round(wall, 2), steps_per_s=round(2 * a.steps / wall, 3), run_train_s=[round(t, 2) for t in train_s]))
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{a.profile} {a.method}, 2 runs x {a.steps} steps of batch {cfgs[0].train.batch_size}, {cores} cores, load average {os.getloadavg()[0]:.1f} at the end")
    for r in rows: print(f"{r['layout']:16s} wall {r['wall_s']:7.1f} s  {r['steps_per_s']:6.2f} steps/s  (training loops {', '.join(map(str, r['run_train_s']))} s)")
    print(f"2 x 1 over 1 x {cores}: {rows[1]['steps_per_s'] / rows[0]['steps_per_s']:.2f}x the throughput")
    if a.json: Path(a.json).write_text(json.dumps(dict(profile=a.profile, method=a.method, steps=a.steps, cores=cores, rows=rows), indent=1))

if __name__ == '__main__': main()
