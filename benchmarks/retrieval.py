"""Time chunked retrieval R@k (`s2vc_repro.evaluate.retrieval_recall`) on random features.

Default: 50k gallery x 10k queries x 512-d on CPU (the full similarity matrix would be 2 GB; the chunks
hold at most `--max-elems` similarities). Also checks R@k of the first queries against a brute-force pass.

    python benchmarks/retrieval.py [--gallery 50000] [--queries 10000] [--dim 512] [--device cpu]
"""
import argparse, time
import numpy as np
import torch
from s2vc_repro.evaluate import retrieval_recall

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--gallery', type=int, default=50_000)
    ap.add_argument('--queries', type=int, default=10_000)
    ap.add_argument('--dim', type=int, default=512)
    ap.add_argument('--classes', type=int, default=400)
    ap.add_argument('--max-elems', type=int, default=2**25, help='similarities held at once')
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--check', type=int, default=500, help='queries re-checked by brute force (0: off)')
    a = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    gal, qry = torch.randn(a.gallery, a.dim, generator=g), torch.randn(a.queries, a.dim, generator=g)
    gl, ql = torch.randint(0, a.classes, (a.gallery,), generator=g), torch.randint(0, a.classes, (a.queries,), generator=g)
    ks = (1, 5, 10, 20, 50)
    t = time.perf_counter()
    r = retrieval_recall(qry, gal, ql, gl, ks, max_elems=a.max_elems, device=a.device)
    if a.device.startswith('cuda'): torch.cuda.synchronize()
    dt = time.perf_counter() - t
    print(f'retrieval {a.gallery} gallery x {a.queries} queries x {a.dim}-d on {a.device} '
          f'({torch.get_num_threads()} threads, max_elems={a.max_elems}): {dt:.2f} s  ({a.queries / dt:.0f} queries/s)')
    print('R@k:', {k: round(v, 4) for k, v in r.items()}, f'(chance R@1 ~ {1 / a.classes:.4f})')
    if a.check:
        n = min(a.check, a.queries)
        m = gal.mean(0)
        q = torch.nn.functional.normalize(qry[:n] - m, dim=1).double().numpy()
        G = torch.nn.functional.normalize(gal - m, dim=1).double().numpy()
        order = np.argsort(-(q @ G.T), axis=1)[:, :max(ks)]
        ref = {k: float(np.mean((gl.numpy()[order[:, :k]] == ql.numpy()[:n, None]).any(1))) for k in ks}
        sub = retrieval_recall(qry[:n], gal, ql[:n], gl, ks, max_elems=a.max_elems, device=a.device)
        ok = all(abs(sub[k] - ref[k]) < 1e-9 for k in ks)
        print(f'brute-force check on {n} queries:', 'OK' if ok else f'MISMATCH {sub} vs {ref}')

if __name__ == '__main__': main()
