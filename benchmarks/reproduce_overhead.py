"""The whole reproduction against its floor: wall time of one `s2vc-repro reproduce` call from an empty run store, against
the sum of the runs' pure step compute, and the share of the wall time that went to evaluation jobs.

    python benchmarks/reproduce_overhead.py                                   # smoke, --only s2vc-tab1 dclr-tab1
    python benchmarks/reproduce_overhead.py --profile mini --only bench-bias --jobs 2 --json out.json

The data is generated before the clock starts (under --data, reused when there), so the ratio measures what the run store,
the executor and the notebooks add to the training steps. The floor is, per pre-training, the time of its steps (each epoch's
`epoch_time` x (1 - `data_wait_share`) in `log.jsonl`) and, per flow, its `done.json` `wall_time`. Job times come from the
executor's `done <job> in N s` lines; at `--jobs 1` the time of the run-making phase that no flow or pre-training took is the
evaluations' (their processes included). The numbers depend on the machine's load: compare runs made side by side.
"""
import argparse, json, os, re, subprocess, sys, tempfile, time
from pathlib import Path

def prepare_data(profile, ids, runs, data):
    "Generate the datasets the planned jobs read (train and evaluation sets), untimed; seconds taken."
    from s2vc_repro.progress import plan
    from s2vc_repro.data.datasets import ensure_data
    from s2vc_repro.evaluate import eval_datasets
    t0, seen = time.time(), set()
    for j in plan(profile, ids, runs, data, None)['graph']:
        if j.kind == 'flow' and j.cfg.flow.images: continue
        for name in {j.cfg.data.dataset, *(eval_datasets(j.cfg) if j.kind == 'eval' else ())}:
            if (name, j.cfg.data.root) in seen: continue
            seen.add((name, j.cfg.data.root))
            ensure_data(j.cfg.replace(**{'data.dataset': name}))
    return time.time() - t0

def step_compute(runs) -> dict:
    "Seconds of pure training compute per run of the store: pre-training steps (from `log.jsonl`), flow training (`done.json`)."
    out = {}
    for d in sorted(Path(runs).iterdir()):
        if not (d/'done.json').exists() or '.' in d.name: continue
        if d.name.startswith('flow-'): out[d.name] = json.loads((d/'done.json').read_text())['wall_time']; continue
        lines = [json.loads(l) for l in (d/'log.jsonl').read_text().splitlines() if l.strip()] if (d/'log.jsonl').exists() else []
        out[d.name] = sum(l['epoch_time'] * (1 - l['data_wait_share']) for l in lines if l.get('type') == 'epoch')
    return out

def eval_compute(runs) -> float:
    "Seconds the evaluations took inside their processes (the `wall_time` of every evaluation record)."
    tot = 0.0
    for f in Path(runs).glob('*/eval/*.json'):
        try: tot += json.loads(f.read_text())['provenance']['wall_time']
        except (ValueError, KeyError, TypeError): pass
    return tot

def derive(res: dict) -> dict:
    "The ratios of a result: wall / summed step compute, evaluations' job time / wall, and, for `jobs` at once, wall / (step compute / jobs) and the evaluations' share of the job slots (jobs x wall)."
    j, wall = max(1, res['jobs']), res['wall_s']
    return dict(ratio=round(wall / max(res['step_compute_s'], 1e-9), 2), eval_share=round(res['eval_jobs_s'] / wall, 3),
                floor_wall_s=round(res['step_compute_s'] / j, 1), ratio_to_floor=round(wall / max(res['step_compute_s'] / j, 1e-9), 2),
                eval_slot_share=round(res['eval_jobs_s'] / (j * wall), 3))

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--profile', default='smoke')
    ap.add_argument('--only', nargs='+', default=['s2vc-tab1', 'dclr-tab1'])
    ap.add_argument('--jobs', type=int, default=1)
    ap.add_argument('--data', default=None, help='data root (default: a folder under --work, generated before the clock starts)')
    ap.add_argument('--work', default=None, help='folder for the run store and results (default: a new temporary folder)')
    ap.add_argument('--json', default=None, help='also write the numbers to this file')
    a = ap.parse_args(argv)
    work = Path(a.work or tempfile.mkdtemp(prefix='reproduce-overhead-'))
    runs, results = work/'runs', work/'results'
    if runs.exists() and any(runs.iterdir()): sys.exit(f'{runs} is not empty: give a new --work folder')
    data = Path(a.data or work/'data')
    t_data = prepare_data(a.profile, a.only, work/'plan-probe', str(data))
    cmd = [sys.executable, '-c', 'import sys; from s2vc_repro.cli import main; sys.exit(main())', 'reproduce', '--profile', a.profile, '--only', *a.only, '--runs', str(runs),
           '--results', str(results), '--data', str(data), '--jobs', str(a.jobs), '--no-site', '--no-tutorials']
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - t0
    (work/'reproduce.out').write_text(p.stdout + p.stderr)
    if p.returncode != 0: sys.exit(f'reproduce failed (exit {p.returncode}); output in {work/"reproduce.out"}:\n{(p.stdout + p.stderr)[-3000:]}')
    done = {m[1]: float(m[2]) for m in re.finditer(r'^\s+done (\S+) in ([\d.]+) s', p.stdout, re.M)}
    made = re.search(r'(\d+) made, (\d+) failed in ([\d.]+) s', p.stdout)
    make_s = float(made[3]) if made else float('nan')
    train_jobs = {n: s for n, s in done.items() if '/jobs/' not in n}
    eval_s = make_s - sum(train_jobs.values()) if a.jobs == 1 else sum(s for n, s in done.items() if '/jobs/' in n)
    floor = step_compute(runs)
    res = dict(profile=a.profile, only=a.only, jobs=a.jobs, cpus=os.cpu_count(), load_before=os.getloadavg(), wall_s=round(wall, 2),
               data_s=round(t_data, 2), make_runs_s=make_s, train_jobs_s=round(sum(train_jobs.values()), 2), eval_jobs_s=round(eval_s, 2),
               notebooks_s=round(wall - make_s, 2), step_compute_s=round(sum(floor.values()), 2), eval_compute_s=round(eval_compute(runs), 2),
               runs=len(floor), evaluations=len(list(runs.glob('*/eval/*.json'))))
    res.update(derive(res))
    print(f"{a.profile} --only {' '.join(a.only)} --jobs {a.jobs}: wall {wall:.1f} s (data generated before: {t_data:.1f} s)")
    print(f"  runs made in {make_s:.1f} s: flows + pre-trainings {res['train_jobs_s']:.1f} s, evaluations {eval_s:.1f} s; notebooks {res['notebooks_s']:.1f} s")
    print(f"  step compute (floor) {res['step_compute_s']:.1f} s over {len(floor)} runs; evaluation compute in-process {res['eval_compute_s']:.1f} s")
    print(f"  ratio wall / step compute = {res['ratio']:.2f}; evaluation share of wall = {100 * res['eval_share']:.1f} %")
    print(f"  with {a.jobs} job(s) at once: floor {res['floor_wall_s']:.1f} s (step compute / jobs), wall / floor = {res['ratio_to_floor']:.2f}; "
          f"evaluations' share of the job slots = {100 * res['eval_slot_share']:.1f} %")
    if a.json: Path(a.json).write_text(json.dumps(res, indent=1))
    return res

if __name__ == '__main__': main()
