"""The whole reproduction against its floor: wall time of one `s2vc-repro reproduce` call from an empty run store, against
the sum of the runs' pure step compute, and the share of the wall time that went to evaluation jobs.

    python benchmarks/reproduce_overhead.py                                   # smoke, --only s2vc-tab1 dclr-tab1
    python benchmarks/reproduce_overhead.py --profile mini --only bench-bias --jobs 2 --json out.json
    python benchmarks/reproduce_overhead.py --profile mini --jobs 2 --from-log LOG --runs RUNS --wall S   # a call already made

The data is generated before the clock starts (under --data, reused when there), so the ratio measures what the run store,
the executor and the notebooks add to the training steps. The floor is, per pre-training, the time of its steps (each epoch's
`epoch_time` x (1 - `data_wait_share`) in `log.jsonl`) and, per flow, its `done.json` `wall_time`. Job times come from the
executor's `done <job> in N s` and `done K evaluations of <run> in N s` lines; at `--jobs 1` the time of the run-making phase that no flow or pre-training took is the
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

def job_times(out: str) -> tuple:
    "`(flows and pre-trainings {name: s}, evaluations {name: s})` from the executor's lines: `done <job> in N s`, `done K evaluations of <run> in N s`."
    done = {m[1]: float(m[2]) for m in re.finditer(r'^\s+done (\S+) in ([\d.]+) s', out, re.M)}
    grouped = {f'{m[2]}/jobs/({m[1]} evaluations)': float(m[3]) for m in re.finditer(r'^\s+done (\d+) evaluations of (\S+) in ([\d.]+) s', out, re.M)}
    return {n: s for n, s in done.items() if '/jobs/' not in n}, {**{n: s for n, s in done.items() if '/jobs/' in n}, **grouped}

def analyse(out: str, # the call's output (stdout)
            runs, # its run store
            wall: float, # its wall time in seconds
            jobs: int, # jobs at once
            extra: dict | None = None, # more fields for the result
           ) -> dict:
    "The numbers of one `reproduce` call from its output and its run store: job times, step compute (the floor), the ratios."
    train_jobs, evals = job_times(out)
    made = re.search(r'(\d+) made, (\d+) failed in ([\d.]+) s', out)
    make_s = float(made[3]) if made else float('nan')
    eval_s = make_s - sum(train_jobs.values()) if jobs == 1 else sum(evals.values())
    floor = step_compute(runs)
    res = dict(**(extra or {}), jobs=jobs, cpus=os.cpu_count(), wall_s=round(wall, 2), make_runs_s=make_s,
               train_jobs_s=round(sum(train_jobs.values()), 2), eval_jobs_s=round(eval_s, 2), notebooks_s=round(wall - make_s, 2),
               step_compute_s=round(sum(floor.values()), 2), eval_compute_s=round(eval_compute(runs), 2),
               runs=len(floor), evaluations=len(list(Path(runs).glob('*/eval/*.json'))))
    res.update(derive(res))
    return res

def report(res: dict, head: str):
    "Print the numbers of `analyse`."
    print(head)
    print(f"  runs made in {res['make_runs_s']:.1f} s: flows + pre-trainings {res['train_jobs_s']:.1f} s, evaluations {res['eval_jobs_s']:.1f} s; notebooks {res['notebooks_s']:.1f} s")
    print(f"  step compute (floor) {res['step_compute_s']:.1f} s over {res['runs']} runs; evaluation compute in-process {res['eval_compute_s']:.1f} s")
    print(f"  ratio wall / step compute = {res['ratio']:.2f}; evaluation share of wall = {100 * res['eval_share']:.1f} %")
    print(f"  with {res['jobs']} job(s) at once: floor {res['floor_wall_s']:.1f} s (step compute / jobs), wall / floor = {res['ratio_to_floor']:.2f}; "
          f"evaluations' share of the job slots = {100 * res['eval_slot_share']:.1f} %")

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--profile', default='smoke')
    ap.add_argument('--only', nargs='+', default=['s2vc-tab1', 'dclr-tab1'])
    ap.add_argument('--jobs', type=int, default=1)
    ap.add_argument('--data', default=None, help='data root (default: a folder under --work, generated before the clock starts)')
    ap.add_argument('--work', default=None, help='folder for the run store and results (default: a new temporary folder)')
    ap.add_argument('--json', default=None, help='also write the numbers to this file')
    ap.add_argument('--from-log', default=None, metavar='LOG', help="no new call: read the numbers of a call already made, from its output LOG, "
                    "its run store --runs and its wall time --wall (e.g. the README command's own call)")
    ap.add_argument('--runs', default=None, help='with --from-log: the run store of that call')
    ap.add_argument('--wall', type=float, default=None, help='with --from-log: the wall time of that call in seconds')
    a = ap.parse_args(argv)
    if a.from_log:
        if not (a.runs and a.wall): ap.error('--from-log needs --runs (the call\'s run store) and --wall (its wall time in seconds)')
        res = analyse(Path(a.from_log).read_text(errors='replace'), a.runs, a.wall, a.jobs, dict(profile=a.profile, log=a.from_log))
        report(res, f"the call of {a.from_log} ({a.jobs} job(s) at once): wall {a.wall:.1f} s")
        if a.json: Path(a.json).write_text(json.dumps(res, indent=1))
        return res
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
    res = analyse(p.stdout, runs, wall, a.jobs, dict(profile=a.profile, only=a.only, load_before=os.getloadavg(), data_s=round(t_data, 2)))
    report(res, f"{a.profile} --only {' '.join(a.only)} --jobs {a.jobs}: wall {wall:.1f} s (data generated before: {t_data:.1f} s)")
    if a.json: Path(a.json).write_text(json.dumps(res, indent=1))
    return res

if __name__ == '__main__': main()
