"""The cost table of a profile (`s2vc_repro/paper_facts/costs.csv`): seconds per job, by kind and method, measured here.

    python benchmarks/job_costs.py --profile mini                       # measure: short step timings scaled by the profile's steps
    python benchmarks/job_costs.py --profile mini --from-store runs     # read the times a filled run store recorded
    python benchmarks/job_costs.py --profile mini --write               # ... and put them into the table (same profile, kind, method replaced)
    python benchmarks/job_costs.py --profile mini --whole --share-from benchmarks/results/reproduce_overhead_mini_bench-bias_bf16.json  # price the whole job

Measured (default): for each pre-training method, `--steps` optimiser steps of the training loop's own step
(`train_step`, after two warm-up steps) on one batch of random uint8 clips of the profile's shape, on one
thread (a job's share at `--jobs auto` on 2 cores); the fewest CPU-seconds a step took (CPU time, not wall
time: on a machine shared with other work a process waits for the CPU, and that wait is not the job's cost)
times the profile's steps (epochs x batches per epoch), plus the CPU-seconds of a job process's start (Python
importing the package's run, training and evaluation modules). The flow likewise: its step on random
images x `flow.steps` (the sampling of its training images from the videos is not included). A method that
cannot step on random clips is left out and said.
From a store: the median `done.json` `wall_time` of each method's complete runs at the profile, and of each
evaluation protocol's recorded `wall_time` — the job's own time, without its process start.
The plan of `s2vc-repro reproduce` on an empty store sums these per job for its estimate and says so.
"""
import argparse, csv, io, json, os, platform, statistics, subprocess, sys, time
from pathlib import Path
import torch

TABLE = Path(__file__).resolve().parents[1]/'s2vc_repro'/'paper_facts'/'costs.csv'
FIELDS = ('profile', 'kind', 'method', 'seconds', 'threads', 'how', 'where', 'command')

def where() -> str:
    "The machine in words: CPU, cores, load, torch."
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor()) if os.path.exists('/proc/cpuinfo') else platform.processor()
    return (f"{cpu}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared machine), torch {torch.__version__}, "
            f"{time.strftime('%Y-%m-%d', time.gmtime())}")

def start_seconds(repeats: int = 3) -> float:
    "CPU-seconds a job's process takes to start: Python with the package's run, training and evaluation modules imported (fewest of `repeats`)."
    import resource
    code = 'import s2vc_repro.runs, s2vc_repro.train, s2vc_repro.evaluate'
    cpu = lambda: (lambda r: r.ru_utime + r.ru_stime)(resource.getrusage(resource.RUSAGE_CHILDREN))
    ts = []
    for _ in range(repeats):
        c = cpu(); subprocess.run([sys.executable, '-c', code], check=True, env={**os.environ, 'OMP_NUM_THREADS': '1'}); ts.append(cpu() - c)
    return min(ts)

def cpu_steps(step, steps: int, warmup: int = 2) -> list:
    "CPU-seconds of each of `steps` calls of `step()` after `warmup` calls."
    for _ in range(warmup): step()
    ts = []
    for _ in range(steps):
        c = time.process_time(); step(); ts.append(time.process_time() - c)
    return ts

def measure(profile: str, steps: int, threads: int, methods=None, amp: bool = False) -> list:
    "Rows of measured pre-training costs: best step time x the profile's steps + process start."
    from s2vc_repro.config import get_config, METHODS
    from s2vc_repro.methods.base import build_method
    from s2vc_repro.augment import ClipAugment
    from s2vc_repro.train import train_step, make_optimizer, seed_all, RandomClips
    from s2vc_repro.flows import build_flow, dequantize, nll
    torch.set_num_threads(threads)
    start, rows, w = start_seconds(), [], where()
    cmd = f'python benchmarks/job_costs.py --profile {profile} --steps {steps} --threads {threads}' + (' --amp' if amp else '')
    cfg = get_config(profile, {'method.name': 's2vc'})
    fc = cfg.flow
    flow = build_flow(fc, 3, seed=0); fopt = torch.optim.Adam([p for p in flow.parameters() if p.requires_grad], lr=fc.lr)
    imgs = torch.randint(0, 256, (fc.batch_size, 3, fc.size, fc.size), dtype=torch.uint8)
    def fstep():
        loss = nll(flow, dequantize(imgs, fc.noise)).mean() / flow.dims
        fopt.zero_grad(set_to_none=True); loss.backward(); fopt.step()
    ts = cpu_steps(fstep, steps)
    rows.append(dict(profile=profile, kind='flow', method='flow', seconds=round(min(ts) * fc.steps + start, 1), threads=threads,
                     how=f'fewest CPU-seconds of {steps} timed steps ({min(ts):.4f} s; median {statistics.median(ts):.4f} s) on random images x {fc.steps} steps '
                         f'+ {start:.1f} s process start (image sampling from the videos not included)', where=w, command=cmd))
    print(f"flow: {rows[-1]['seconds']} s ({rows[-1]['how']})", flush=True)
    for name in methods or METHODS.names():
        cfg = get_config(profile, {'method.name': name})
        n_steps = cfg.train.epochs * (cfg.synth.n_train // cfg.train.batch_size) if cfg.data.dataset.startswith('synth-') else None
        if n_steps is None: print(f'{name}: skipped (the step count of a real data set is not known here)'); continue
        try:
            seed_all(0)
            m = build_method(cfg, flow=flow) if name == 's2vc' else build_method(cfg); aug = ClipAugment(cfg.aug, cfg.data.size); opt = make_optimizer(m.parameters(), cfg.train)
            ds = RandomClips(cfg.train.batch_size, m.data_mode, cfg.data.frames + (name == 'dclr'), cfg.data.resize or cfg.data.size, cfg.synth.n_classes)
            batch = torch.utils.data.default_collate([ds[i] for i in range(len(ds))])
            ts = cpu_steps(lambda: train_step(m, batch, aug, opt, device='cpu', amp=amp, amp_dtype=torch.bfloat16), steps)
        except Exception as e:
            print(f'{name}: not measured ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""})'); continue
        sec = min(ts) * n_steps + start
        rows.append(dict(profile=profile, kind='pretrain', method=name, seconds=round(sec, 1), threads=threads,
                         how=f'fewest CPU-seconds of {steps} timed steps ({min(ts):.4f} s; median {statistics.median(ts):.4f} s) on random clips x {n_steps} steps + {start:.1f} s process start',
                         where=w, command=cmd))
        print(f"{name}: {rows[-1]['seconds']} s ({rows[-1]['how']})", flush=True)
    return rows

def from_store(profile: str, runs) -> list:
    "Rows of recorded costs: the median job time per method (pre-trainings, flows) and per evaluation protocol, from a run store."
    from s2vc_repro.progress import _measured  # what the plan reads from a store: the same job times
    got = _measured(Path(runs), profile)
    w = where()
    return [dict(profile=profile, kind=k, method=m, seconds=round(statistics.median(ts), 1), threads='',
                 how=f'median of {len(ts)} recorded job times (done.json / evaluation wall_time) in the run store',
                 where=w, command=f'python benchmarks/job_costs.py --profile {profile} --from-store {runs}')
            for (k, m), ts in sorted(got.items())]

def write(rows: list, profile: str, path=TABLE):
    "Put `rows` into the table at `path` (atomically), replacing the rows of `profile` of the same kind and method; the others stay."
    from s2vc_repro.records import atomic_write
    old = [r for r in csv.DictReader(open(path))] if Path(path).exists() else []
    new = {(r['profile'], r['kind'], r['method']) for r in rows}
    keep = [r for r in old if (r['profile'], r['kind'], r['method']) not in new]
    out = io.StringIO(); wr = csv.DictWriter(out, FIELDS, lineterminator='\n'); wr.writeheader()
    for r in keep + rows: wr.writerow({k: r[k] for k in FIELDS})
    atomic_write(path, out.getvalue())

def whole(profile: str, jobs: int = 2, share_from=None):
    "The whole reproduction's pre-trainings and flow, priced by the cost table: job time per method, in all, with `jobs` at once, and the step-compute floor."
    from s2vc_repro.progress import plan_jobs, cost_table, makespan, _table_estimate
    from s2vc_repro.reproduce import resolve_ids
    import tempfile
    _, graph = plan_jobs(profile, resolve_ids(None), tempfile.mkdtemp(prefix='s2vc-whole-'))
    table, est, per = cost_table(profile), {}, {}
    for j in graph:
        if j.kind == 'eval' or (t := _table_estimate(j, table)) is None: continue
        est[j.name] = t
        k = per.setdefault('flow' if j.kind == 'flow' else j.cfg.method.name, [0, 0.0]); k[0] += t > 0; k[1] += t
    total, wall = sum(est.values()), makespan(graph, est, jobs)
    hm = lambda x: f'{int(x // 3600)} h {int(x % 3600 // 60):02d} min'
    for m, (n, t) in sorted(per.items(), key=lambda x: -x[1][1]):
        print(f'{m:16s} {n:3d} job(s) {t:8.0f} s  ({hm(t)}; {hm(t / jobs)} on {jobs} slots)')
    print(f'pre-trainings and flow at {profile}: {sum(n for n, _ in per.values())} job(s), {total:.0f} s of job time ({hm(total)}), {hm(wall)} with {jobs} jobs at once')
    if share_from:
        r = json.loads(Path(share_from).read_text()); share = r['step_compute_s'] / r['train_jobs_s']
        print(f'step compute is {100 * share:.1f} % of job time in {share_from}: floor {hm(total * share / jobs)} on {jobs} slots')

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--profile', default='mini')
    ap.add_argument('--steps', type=int, default=5, help='timed steps per method')
    ap.add_argument('--threads', type=int, default=1, help='torch threads (a job at --jobs auto on 2 cores has 1)')
    ap.add_argument('--methods', nargs='*', default=None, help='methods to measure (default: every registered one)')
    ap.add_argument('--amp', action='store_true', help='bfloat16 autocast in the pre-training steps (what train.cpu_amp does on a bfloat16 CPU)')
    ap.add_argument('--from-store', default=None, metavar='RUNS', help='read recorded job times from this run store instead of measuring')
    ap.add_argument('--whole', action='store_true', help="price the profile's whole reproduction (pre-trainings and flow) with the table; measure nothing")
    ap.add_argument('--jobs', type=int, default=2, help='--whole: jobs at once')
    ap.add_argument('--share-from', default=None, metavar='JSON', help='--whole: a reproduce_overhead.py result whose step-compute share of job time gives the floor')
    ap.add_argument('--write', action='store_true', help=f'put the rows into {TABLE}, replacing those of the same profile, kind and method')
    a = ap.parse_args(argv)
    if a.whole: return whole(a.profile, a.jobs, a.share_from)
    rows = from_store(a.profile, a.from_store) if a.from_store else measure(a.profile, a.steps, a.threads, a.methods, amp=a.amp)
    if a.from_store:
        for r in rows: print(f"{r['kind']} {r['method']}: {r['seconds']} s ({r['how']})")
    if not rows: sys.exit('nothing measured')
    if a.write: write(rows, a.profile); print(f'wrote {len(rows)} row(s) of {a.profile} to {TABLE}')

if __name__ == '__main__': main()
