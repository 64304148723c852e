"Reported numbers (s2vc_repro.papers) and result writing (s2vc_repro.report): data, layout, atomic files, claims and verdicts."
import re, subprocess, sys, textwrap
from pathlib import Path
import numpy as np
import pandas as pd
import pytest

from s2vc_repro import records, report
from s2vc_repro.papers import reported, reported_artifacts as artifacts, layout, row_labels, KINDS
from s2vc_repro.records import atomic_write, git_commit
from s2vc_repro.papers import claims_table
from s2vc_repro.report import (ARTIFACTS, CLAIMS, CSV_COLUMNS, check_claims, load_results, provenance,
                               save_figure, write_table)

INVENTORY = Path(__file__).resolve().parents[2]/'shared'/'spec'/'INVENTORY.md'  # the spec beside the checkout
TABLES = ['s2vc-tab1', 's2vc-tab2', 's2vc-tab3', 's2vc-tab4', 'dsm-tab1', 'dsm-tab2', 'dsm-tab3', 'dsm-tab4',
          'dclr-tab1', 'dclr-tab2', 'dclr-tab3', 'dclr-tab4', 'dclr-tab5', 'dclr-tab6', 'dclr-tab7']
FIGURES_WITH_NUMBERS = ['s2vc-fig1', 's2vc-fig3', 's2vc-fig6', 'dsm-fig1', 'dsm-fig4', 'dclr-intro']

# ---------------------------------------------------------------- reported data
def test_reported_parses():
    df = reported()
    assert list(df.columns) == ['artifact', 'row', 'backbone', 'pretrain_dataset', 'input', 'column', 'value', 'kind', 'source', 'note']
    assert df['value'].dtype == float and df['value'].notna().all()
    assert set(df.kind) <= set(KINDS)
    assert not df.duplicated(['artifact', 'row', 'column']).any()
    assert (df.source.str.len() > 0).all()
    assert df.input.map(lambda s: s == '' or re.fullmatch(r'(\d+x)?\d+x\d+', s) is not None).all()
    # accuracies and recalls are percentages; only the correlation coefficients are in [-1, 1]
    pct = df[df.column != 'Pearson rho']
    assert pct.value.between(0, 100).all()
    assert df[df.column == 'Pearson rho'].value.between(-1, 1).all()

@pytest.mark.parametrize('aid', TABLES + FIGURES_WITH_NUMBERS)
def test_every_artifact_with_numbers_has_rows(aid):
    df = reported(aid)
    assert len(df) > 0 and aid in ARTIFACTS
    assert (df.kind == 'reproduced').any(), f'{aid} has no re-run rows'

def test_artifacts_are_inventory_ids():
    assert set(artifacts()) == set(TABLES + FIGURES_WITH_NUMBERS)
    if INVENTORY.exists():  # the spec lives outside the package; check the ID list against it when it is there
        ids = set(re.findall(r'^\| ((?:s2vc|dsm|dclr|bench)-[a-z0-9-]+) \|', INVENTORY.read_text(), flags=re.M))
        assert ids == set(ARTIFACTS)

def test_unknown_artifact_named():
    with pytest.raises(KeyError, match='s2vc-tab1'): reported('nope')

# the rows INVENTORY marks as re-run
RERUN = {
    's2vc-tab1': ['MoCo Baseline', 'Ours [S3D, UCF101]', 'Ours [S3D, K200]', 'Ours [R3D, UCF101]', 'Ours [R3D, K400]'],
    's2vc-tab2': ['MoCo [S3D]', 'Ours [S3D]', 'Ours [R3D]'],
    's2vc-tab3': ['MoCo [S3D]', 'Ours [S3D]', 'Ours [R3D]'],
    's2vc-tab4': ['MoCo', 'TFD', 'S2VC (set to random noise)', 'S2VC (shuffle - in clip)', 'S2VC (shuffle - in frame)', 'S2VC (set to 0) [default]'],
    'dsm-tab1': ['Random init', 'MoCo [C3D, UCF101]', 'DSM (Triplet) [C3D, UCF101]', 'DSM [C3D, UCF101]', 'MoCo [I3D, K400]',
                 'DSM (Triplet) [I3D, K400]', 'DSM (Triplet) [R3D-34, K400]', 'DSM [I3D, K400]', 'DSM [R3D-34, K400]'],
    'dsm-tab2': ['DSM [C3D]', 'DSM [I3D]'], 'dsm-tab3': ['DSM [C3D]', 'DSM [I3D]'],
    'dclr-tab1': ['DCLR [K400]', 'DCLR [UCF101]'], 'dclr-tab2': ['Random Init.', 'DCLR [UCF101]', 'DCLR [K400]'], 'dclr-tab3': ['DCLR'],
}
@pytest.mark.parametrize('aid', list(RERUN))
def test_rerun_rows(aid):
    assert row_labels(aid) == RERUN[aid]

def test_all_rows_rerun_in_ablations():
    for aid, n in [('s2vc-tab4', 6), ('dsm-tab4', 6), ('dclr-tab4', 10), ('dclr-tab5', 4), ('dclr-tab6', 6), ('dclr-tab7', 5)]:
        assert len(row_labels(aid)) == n and row_labels(aid, 'cited') == []

def test_table_shapes_and_spot_values():
    assert layout('s2vc-tab1').shape == (14, 4)
    assert layout('dclr-tab3').shape == (6, 8)
    assert layout('dsm-tab2').shape == (7, 5)
    t = layout('s2vc-tab1')
    assert t.loc['CoCLR'].tolist() == [87.9, 54.6, 74.5, 46.1]
    assert np.isnan(t.loc['VCOP', 'UCF101 linear'])
    assert layout('dclr-tab3').loc['DCLR'].tolist() == [54.8, 68.3, 75.9, 82.8, 24.1, 44.5, 53.7, 64.5]
    assert layout('dsm-tab3').loc['DSM [I3D]'].tolist() == [7.6, 23.3, 36.5, 52.5, 76.0]
    assert layout('dclr-tab6').loc['10 / Prior'].tolist() == [66.3, 39.8]

def test_reconstructed_cells_are_annotated():
    t4 = reported('dclr-tab4')
    assert t4.note.str.contains('derived from the ablation prose').all()

# ---------------------------------------------------------------- writing tables
def _mine():
    return pd.DataFrame(dict(row=['MoCo', 'S2VC (set to 0) [default]', 'MoCo'], column=['UCF101 R@1', 'UCF101 R@1', 'HMDB51 R@1'],
                             value=[21.0, 26.5, 9.9], std=[0.8, 1.1, 0.5], n_seeds=[3, 3, 3]))

def test_write_table_csv_md(tmp_path):
    prov = provenance('smoke', configs={'s2vc': 'h1'}, seeds=3, wall_time=1.0)
    paths = write_table('s2vc-tab4', _mine(), tmp_path, 'smoke', seeds=[0, 1, 2], provenance=prov)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['s2vc-tab4.csv', 's2vc-tab4.md']
    df = pd.read_csv(paths['csv'], dtype={'seeds': str})
    assert list(df.columns) == list(CSV_COLUMNS) and len(df) == 12
    got = df[df.reproduced.notna()]
    assert len(got) == 3 and set(got.profile) == {'smoke'} and set(got.seeds) == {'0,1,2'} and set(got.config_hash) == {'h1'}
    assert (df[df.reproduced.isna()].profile.isna()).all()
    md = paths['md'].read_text()
    assert '| MoCo | 25.4 / 21.0 ± 0.8 | 11.8 / 9.9 ± 0.5 |' in md
    assert '| TFD | 29.1 / — | 11.6 / — |' in md
    assert 'profile: smoke' in md and 'config_hashes: s2vc=h1' in md and 'torch=' in md and 'device:' in md

def test_write_table_cited_and_extra(tmp_path):
    rows = pd.DataFrame(dict(row=['DCLR', 'My extra'], column=['UCF101 R@1'] * 2, value=[30.0, 10.0]))
    with pytest.warns(UserWarning, match='My extra'):
        paths = write_table('dclr-tab3', rows, tmp_path, 'mini', seeds=1)
    md = paths['md'].read_text()
    assert '| VCP (cited) | 18.6 | 33.6 |' in md
    assert '| DCLR | 54.8 / 30.0 | 68.3 / — |' in md
    assert '| My extra (extra) | — / 10.0 | — | ' in md
    df = pd.read_csv(paths['csv'])
    assert df.kind.tolist()[-1] == 'extra' and df.row.tolist()[-1] == 'My extra'
    with pytest.raises(KeyError, match='not in the paper'):
        write_table('dclr-tab3', rows, tmp_path, 'mini', strict=True)

def test_write_table_without_paper_numbers(tmp_path):
    bb = pd.DataFrame(dict(row=['MoCo', 'S2VC'], column=['conflicting'] * 2, value=[31.0, 40.0]))
    paths = write_table('bench-bias', bb, tmp_path, 'smoke', seeds=2)
    df = pd.read_csv(paths['csv'])
    assert df.kind.tolist() == ['extra', 'extra'] and df.n_seeds.tolist() == [2, 2]

def test_write_table_nothing_ran(tmp_path):
    paths = write_table('dsm-tab4', None, tmp_path, 'smoke')
    df = pd.read_csv(paths['csv'])
    assert len(df) == 12 and df.reproduced.isna().all()

def test_write_table_bad_input(tmp_path):
    with pytest.raises(ValueError, match='dsm-tab1'): write_table('dsm-table1', _mine(), tmp_path, 'smoke')
    with pytest.raises(ValueError, match='value'): write_table('s2vc-tab4', _mine().drop(columns='value'), tmp_path, 'smoke')
    with pytest.raises(ValueError, match='repeat'): write_table('s2vc-tab4', pd.concat([_mine(), _mine()]), tmp_path, 'smoke')
    with pytest.raises(TypeError): write_table('s2vc-tab4', [1, 2], tmp_path, 'smoke')
    assert list(tmp_path.iterdir()) == []

# ---------------------------------------------------------------- atomicity
def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    p = atomic_write(tmp_path/'x.csv', 'old')
    def boom(*a, **k): raise OSError('disk full')
    monkeypatch.setattr(records.os, 'fsync', boom)
    with pytest.raises(OSError, match='disk full'): atomic_write(p, 'new content')
    assert p.read_text() == 'old'
    assert [q.name for q in tmp_path.iterdir()] == ['x.csv']  # the temporary file is removed

def test_write_table_failure_keeps_previous_results(tmp_path, monkeypatch):
    write_table('s2vc-tab4', _mine(), tmp_path, 'smoke', seeds=3)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    def boom(*a, **k): raise OSError('replace failed')
    monkeypatch.setattr(records.os, 'replace', boom)
    m = _mine(); m['value'] = m['value'] + 1
    with pytest.raises(OSError): write_table('s2vc-tab4', m, tmp_path, 'smoke', seeds=3)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before

def test_killed_writer_leaves_no_partial_table(tmp_path):
    "A process killed between writing and renaming leaves the old table whole; its temp file is not read as a result."
    write_table('s2vc-tab4', _mine(), tmp_path, 'smoke', seeds=3)
    old = (tmp_path/'s2vc-tab4.csv').read_text()
    code = textwrap.dedent(f'''
        import os, pandas as pd
        from s2vc_repro import records, report
        records.os.replace = lambda *a, **k: os._exit(3)
        m = pd.DataFrame(dict(row=['MoCo'], column=['UCF101 R@1'], value=[99.0]))
        report.write_table('s2vc-tab4', m, {str(tmp_path)!r}, 'smoke')
    ''')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr
    assert (tmp_path/'s2vc-tab4.csv').read_text() == old
    res = load_results(tmp_path)
    assert set(res.artifact) == {'s2vc-tab4'} and len(res) == 12 and 99.0 not in res.reproduced.tolist()

# ---------------------------------------------------------------- figures, provenance, results
def test_save_figure(tmp_path):
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    report.set_style()
    fig, ax = plt.subplots(); ax.plot([0, 1], [1, 0])
    nums = pd.DataFrame(dict(row=['S2VC', 'MoCo'] * 2, column=['Pearson rho'] * 2 + ['Pearson rho minus null'] * 2,
                             value=[-0.9, -0.85, -0.3, -0.1], std=0.05, n_seeds=3, seeds='0,1,2'))
    paths = save_figure(fig, 's2vc-fig6', tmp_path, numbers=nums, provenance=provenance('smoke'))
    plt.close(fig)
    assert paths['png'].read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert pd.read_csv(paths['csv']).artifact.tolist() == ['s2vc-fig6'] * 4
    res = load_results(tmp_path)
    chk = check_claims(res).set_index('claim')
    assert chk.loc[['s2vc-fig6-negative-s2vc', 's2vc-fig6-negative-moco', 's2vc-fig6-stronger'], 'verdict'].tolist() == ['holds'] * 3
    md = paths['md'].read_text()  # the figure's page: the picture, then its claims with verdicts
    assert '![s2vc-fig6](s2vc-fig6.png)' in md and md.index('## Claims') > md.index('![s2vc-fig6]') and '**holds**' in md
    with pytest.raises(ValueError, match='s2vc-fig6'): save_figure(fig, 's2vc-figure6', tmp_path)

def test_provenance_without_git(tmp_path, monkeypatch):
    assert git_commit(tmp_path) == 'unknown'
    def nogit(*a, **k): raise FileNotFoundError('git')
    monkeypatch.setattr(records.subprocess, 'run', nogit)
    p = provenance('mini', seeds=[1, 2])
    assert p['git_commit'] == 'unknown' and p['seeds'] == '1,2' and p['profile'] == 'mini'
    assert {'torch', 'torchvision', 's2vc_repro', 'decord', 'FrEIA'} <= set(p['versions'])

def test_provenance_from_config():
    from s2vc_repro.config import get_config
    cfg = get_config('smoke')
    p = provenance(configs={'moco': cfg})
    assert p['profile'] == 'smoke' and p['config_hashes'] == {'moco': cfg.hash}

# ---------------------------------------------------------------- claims
def test_claims_hold_on_reported_numbers():
    "On the papers' own numbers (exact, cited rows included) every claim whose cells are printed holds."
    chk = check_claims(reported(), values='value', cited=True, exact=True)
    assert set(chk.verdict) == {'holds', 'not run', 'not testable here'}
    assert set(chk[chk.verdict == 'not testable here'].claim) == {'s2vc-fig3-kept-ucf101', 's2vc-fig3-kept-hmdb51'}  # by construction
    assert (chk.verdict == 'holds').sum() >= 140
    assert chk[chk.verdict == 'not run'].artifact.str.contains('-fig').all()  # only figures lack printed numbers
    assert len(claims_table()) == len(CLAIMS) and claims_table().id.is_unique

def test_every_paper_artifact_that_compares_has_claims():
    have = {c.artifact for c in CLAIMS}
    assert {a for a in ARTIFACTS if not a.startswith('bench')} - have == {'s2vc-fig2', 'dsm-fig2', 'dclr-fig2'}
    assert {p: sum(c.paper == p for c in CLAIMS) >= 50 for p in ('S2VC', 'DSM', 'DCLR')} == {'S2VC': True, 'DSM': True, 'DCLR': True}

def test_claims_reference_existing_cells():
    "Every cell a claim reads on a table with reported numbers is a key of the reported data (no typos)."
    keys = set(zip(reported().artifact, reported().row, reported().column))
    tables = {a for a in artifacts() if a.split('-')[1].startswith(('tab', 'intro'))}
    n = 0
    for c in CLAIMS:
        exprs = [c.lhs] + (list(c.rhs.items or []) if isinstance(c.rhs, report.Among) else [c.rhs] if isinstance(c.rhs, report.Expr) else [])
        for e in exprs:
            for _, a, r, col in e.terms:
                if (a or c.artifact) in tables: assert ((a or c.artifact), r, col) in keys, (c.id, r, col); n += 1
    assert n > 200

def _dclr4(values, std=0.5, n=3):
    return pd.DataFrame(dict(artifact='dclr-tab4', row=list(values), column='UCF101 linear', reproduced=list(values.values()),
                             std=std, n_seeds=n, seeds=','.join(map(str, range(n)))))

def test_claims_verdicts():
    res = _dclr4({'L_VV': 40.0, 'L_VS': 45.0, 'L_VD': 39.0})
    chk = check_claims(res).set_index('claim')
    assert chk.loc['dclr-tab4-vd', 'verdict'] == 'does not hold'    # 1 point below, more than 2 SE (0.82)
    assert chk.loc['dclr-tab4-vs', 'verdict'] == 'does not hold'    # 5 points apart, beyond the 1.5 tolerance
    assert chk.loc['dclr-tab4-vd-over-vs', 'verdict'] == 'does not hold'
    assert chk.loc['dclr-tab4-dual', 'verdict'] == 'not run'
    assert chk.loc['dclr-tab4-vd', 'seeds'] == '0,1,2' and chk.loc['dclr-tab4-vd', 'n_seeds'] == 3
    assert abs(chk.loc['dclr-tab4-vd', 'se'] - np.sqrt(2 * 0.25 / 3)) < 1e-3
    with pytest.raises(ValueError, match='artifact'): check_claims(res.drop(columns='artifact'))

@pytest.mark.parametrize('vd, std, n, verdict', [
    (45.0, 0.5, 3, 'holds'),           # 5 points above, SE 0.41: p < 0.001 (Welch, 4 df)
    (40.5, 0.5, 3, 'inconclusive'),    # 0.5 points above: p = 0.14
    (36.0, 0.5, 3, 'does not hold'),   # 4 points below
    (45.0, 0.0, 1, 'inconclusive'),    # one seed: no standard error, no verdict
    (45.0, 6.0, 3, 'inconclusive'),    # the seeds disagree too much
])
def test_verdict_rule(vd, std, n, verdict):
    chk = check_claims(_dclr4({'L_VV': 40.0, 'L_VD': vd}, std, n)).set_index('claim')
    assert chk.loc['dclr-tab4-vd', 'verdict'] == verdict
    assert report.verdict(0.01) == 'holds' and report.verdict(0.5, 0.01) == 'does not hold' and report.verdict(np.nan) == 'inconclusive'

def test_max_over_others():
    "`max(others)` compares with every other row of the figure, and only with those: an added row is not one of them."
    res = pd.DataFrame(dict(artifact='s2vc-fig3', row=['alpha=0.1', 'alpha=0.3', 'alpha=0.5', 'alpha=0.8', 'alpha=1.0'], column='UCF101 R@1',
                            value=[10.0, 11.0, 14.0, 12.0, 11.0], std=0.5, n_seeds=3))
    r = check_claims(res).set_index('claim').loc['s2vc-fig3-peak-ucf101']
    assert r.verdict == 'holds' and r.difference == 2.0 and r.stat_test.endswith('weakest of 4')
    extra = pd.concat([res, pd.DataFrame(dict(artifact='s2vc-fig3', row=['alpha=0.9'], column='UCF101 R@1', value=[20.0], std=0.5, n_seeds=3))])
    assert check_claims(extra).set_index('claim').loc['s2vc-fig3-peak-ucf101', 'verdict'] == 'holds'
    res.loc[0, 'value'] = 16.0
    assert check_claims(res).set_index('claim').loc['s2vc-fig3-peak-ucf101', 'verdict'] == 'does not hold'
    assert check_claims(res[res.row != 'alpha=0.3']).set_index('claim').loc['s2vc-fig3-peak-ucf101', 'verdict'] == 'not run'

def test_max_others_needs_every_rerun_row():
    "`max(others)` on a table is not judged on a subset of the paper's re-run rows."
    res = pd.DataFrame(dict(artifact='s2vc-tab4', row=['MoCo', 'S2VC (set to 0) [default]'], column='UCF101 R@1',
                            reproduced=[20.0, 30.0], std=0.5, n_seeds=3))
    assert check_claims(res).set_index('claim').loc['s2vc-tab4-best-ucf101', 'verdict'] == 'not run'

def test_write_claims(tmp_path):
    write_table('s2vc-tab4', _mine(), tmp_path, 'smoke', seeds=3)
    paths = report.write_claims(tmp_path, provenance=provenance('smoke'))
    chk = pd.read_csv(paths['csv'])
    assert len(chk) == len(CLAIMS) and set(chk.verdict) <= set(report.VERDICTS) | {report.DUPLICATE}
    assert {'p_raw', 'p_adjusted', 'stat_test', 'reason', 'twins'} <= set(chk.columns)
    md = paths['md'].read_text()
    assert md.count('\n| ') == len(CLAIMS) + chk.paper.nunique()  # a header line per paper and 'Provenance' in md and report.SE_RULE in md
    assert '[s2vc-tab4](s2vc-tab4.md)' in md and '[dsm-tab1](dsm-tab1.md)' not in md  # links only to pages that exist
    assert set(load_results(tmp_path).artifact) == {'s2vc-tab4'}  # claims.csv is not read back as a result

def test_table_md_ends_with_its_claims(tmp_path):
    p = write_table('s2vc-tab4', _mine(), tmp_path, 'smoke', seeds=3)['md']
    md = p.read_text()
    tail = md[md.index('## Claims'):]
    assert md.index('## Provenance') < md.index('## Claims') and report.SE_RULE in tail
    assert tail.count('\n| ') == 1 + sum(c.artifact == 's2vc-tab4' for c in CLAIMS)
    assert '0,1,2 (n = 3)' in tail

def test_claims_against_cited_rows():
    res = pd.DataFrame(dict(artifact='dsm-tab2', row=['DSM [C3D]'], column='UCF101 R@1', reproduced=[13.0], std=0.1, n_seeds=3))
    assert check_claims(res).set_index('claim').loc['dsm-tab2-cliporder-r1', 'verdict'] == 'not run'
    r = check_claims(res, cited=True).set_index('claim').loc['dsm-tab2-cliporder-r1']
    assert r.verdict == 'holds' and abs(r.difference - 0.5) < 1e-9 and 'reported' in r.seeds  # Clip Order [C3D] reports 12.5

# ---------------------------------------------------------------- known answers of the test rule
def _tab3_r10(profile='mini'):
    "S2VC Table 3's R@10 at mini: 94.3 and 92.3 with standard errors 0.87 and 0.17 over three seeds."
    return pd.DataFrame(dict(artifact='s2vc-tab3', row=['Ours [S3D]', 'MoCo [S3D]'], column='HMDB51 R@10', reproduced=[94.3, 92.3],
                             std=[0.87 * 3 ** .5, 0.17 * 3 ** .5], n_seeds=3, seeds='0,1,2', profile=profile))

def test_known_answer_welch_inconclusive():
    "2.0 ± 0.88 on Welch's 2.2 degrees of freedom: p = 0.07, inconclusive (the former 2-SE rule said 'holds')."
    r = check_claims(_tab3_r10()).set_index('claim').loc['s2vc-tab3-moco-r10']
    assert r.verdict == 'inconclusive' and r.stat_test == 'Welch, df=2.2' and abs(r.p_raw - 0.073) < 0.005
    assert abs(r.difference - 2.0) < 1e-9 and abs(r.se - 0.886) < 1e-3
    from scipy import stats
    ref = stats.ttest_ind_from_stats(94.3, 0.87 * 3 ** .5, 3, 92.3, 0.17 * 3 ** .5, 3, equal_var=False, alternative='greater').pvalue
    assert abs(r.p_raw - ref) < 1e-9

def test_known_answer_paired_holds():
    "The same means with per-seed values that move together: a paired t-test over the shared seeds, p < 0.001."
    sv = pd.DataFrame(dict(artifact='s2vc-tab3', row=['Ours [S3D]'] * 3 + ['MoCo [S3D]'] * 3, column='HMDB51 R@10', seed=[0, 1, 2] * 2,
                           value=[93.1, 94.0, 95.8, 91.0, 92.1, 93.8]))
    r = check_claims(_tab3_r10(), seed_values=sv).set_index('claim').loc['s2vc-tab3-moco-r10']
    assert r.verdict == 'holds' and r.stat_test == 'paired t, n=3' and r.p_raw < 0.001
    # a table that records no spread: the per-seed values give it
    r = check_claims(_tab3_r10().drop(columns=['std', 'n_seeds']), seed_values=sv).set_index('claim').loc['s2vc-tab3-moco-r10']
    assert r.stat_test == 'paired t, n=3' and r.n_seeds == 3
    # seeds that do not match on the two sides: no pairing, Welch
    r = check_claims(_tab3_r10(), seed_values=sv.assign(seed=[0, 1, 2, 3, 4, 5])).set_index('claim').loc['s2vc-tab3-moco-r10']
    assert r.stat_test.startswith('Welch')

def test_known_answer_paired_without_spread():
    "s2vc-tab3-moco-r50 at mini: every seed 1.0 point apart. No spread for a t-test; the exact sign-flip test gives 1/8: inconclusive."
    sv = pd.DataFrame(dict(artifact='s2vc-tab3', row=['Ours [S3D]'] * 3 + ['MoCo [S3D]'] * 3, column='HMDB51 R@50', seed=[0, 1, 2] * 2,
                           value=[98.4, 98.7, 99.0, 97.4, 97.7, 98.0]))
    t = pd.DataFrame(dict(artifact='s2vc-tab3', row=['Ours [S3D]', 'MoCo [S3D]'], column='HMDB51 R@50', reproduced=[98.7, 97.7],
                          std=[0.3, 0.3], n_seeds=3, seeds='0,1,2', profile='mini'))
    r = check_claims(t, seed_values=sv).set_index('claim').loc['s2vc-tab3-moco-r50']
    assert r.stat_test == 'paired sign-flip (exact), n=3, no spread' and r.se == 0
    assert abs(r.p_raw - 0.125) < 1e-12 and r.p_against == 1.0 and r.verdict == 'inconclusive'
    # two cells without spread and no per-seed values: no test
    r = check_claims(t.assign(std=0.0)).set_index('claim').loc['s2vc-tab3-moco-r50']
    assert r.stat_test == 'no spread over seeds: no test' and r.verdict == 'inconclusive' and np.isnan(r.p_raw)

@pytest.mark.parametrize('a, b, verdict', [(48.0, 48.2, 'holds'), (52.0, 48.0, 'does not hold'), (49.2, 48.0, 'inconclusive')])
def test_known_answer_tost(a, b, verdict):
    "dclr-intro-static (tolerance 1.5): inside by far holds, 4 points apart does not, 1.2 apart with SE 0.41 is inconclusive."
    res = pd.DataFrame(dict(artifact='dclr-intro', row=['Static frame as positive (L_VS)', 'Vanilla (L_VV)'], column='UCF101 linear',
                            reproduced=[a, b], std=0.5, n_seeds=3, profile='mini'))
    r = check_claims(res).set_index('claim').loc['dclr-intro-static']
    assert r.verdict == verdict and r.stat_test == 'TOST ±1.5, Welch, df=4.0'

def test_known_answer_same_run_not_testable():
    res = pd.DataFrame(dict(artifact='dclr-tab1', row=['DCLR [K400]', 'DCLR [UCF101]'], column='UCF101 finetune', reproduced=37.7,
                            std=3.9, n_seeds=3, profile='mini'))
    r = check_claims(res).set_index('claim').loc['dclr-tab1-finetune-k400-ucf101']
    assert r.verdict == 'not testable here' and r.reason.startswith('both sides resolve to the same run at mini') and np.isnan(r.p_raw)
    r = check_claims(res.assign(profile='paper')).set_index('claim').loc['dclr-tab1-finetune-k400-ucf101']
    assert r.verdict == 'does not hold' and r.reason == ''  # two runs at the paper profile, and the cited rows print more than 37.7

def test_known_answer_duplicate_counted_once(tmp_path):
    "dclr-tab2-random-{ucf101,k400} are one test at mini: the second is a duplicate naming the first, and totals count it once."
    write_table('dclr-tab2', pd.DataFrame(dict(row=['DCLR [UCF101]', 'DCLR [K400]', 'Random Init.'], column='Diving48 finetune',
                                               value=[14.0, 14.0, 13.8], std=[1.5, 1.5, 1.7], n_seeds=3)), tmp_path, 'mini', seeds=3)
    chk = pd.read_csv(report.write_claims(tmp_path, provenance=provenance('mini'))['csv']).set_index('claim')
    assert chk.loc['dclr-tab2-random-k400', 'verdict'] == 'duplicate' and chk.loc['dclr-tab2-random-k400', 'reason'] == 'same test as dclr-tab2-random-ucf101'
    assert chk.loc['dclr-tab2-random-ucf101', 'verdict'] == 'inconclusive' and chk.loc['dclr-tab2-random-ucf101', 'twins'] == 'dclr-tab2-random-k400'
    md = (tmp_path/'claims.md').read_text()
    n = chk.verdict.value_counts()
    assert f"{len(chk)} claims, {len(chk) - n['duplicate']} distinct tests · holds: {n.get('holds', 0)} · " in md
    assert md.split('\n')[2].startswith('**Synthetic testbed.** The numbers of profile `mini` come from the synthetic testbed')

def test_p_values_adjusted_per_paper():
    "Benjamini–Hochberg within each paper: the adjusted p-values are scipy's over that paper's tested claims."
    from scipy import stats
    res = pd.concat([_dclr4({'L_VV': 40.0, 'L_VS': 40.3, 'L_VD': 41.0}), _tab3_r10(None).drop(columns='profile')])
    chk = check_claims(res)
    for paper, g in chk[chk.p_raw.notna()].groupby('paper'):
        assert np.allclose(g.p_adjusted, stats.false_discovery_control(g.p_raw, method='bh')), paper
    assert chk.p_raw.notna().groupby(chk.paper).sum().to_dict() == {'S2VC': 1, 'DSM': 0, 'DCLR': 3}

def test_seed_values_from_folder(tmp_path):
    "write_claims reads `<ID>-seeds.csv` beside the tables; a folder without them is tested from mean, std and n."
    write_table('s2vc-tab3', _tab3_r10().drop(columns=['artifact', 'profile']).rename(columns={'reproduced': 'value'}), tmp_path, 'mini', seeds=3)
    r = pd.read_csv(report.write_claims(tmp_path)['csv']).set_index('claim').loc['s2vc-tab3-moco-r10']
    assert r.stat_test == 'Welch, df=2.2'
    pd.DataFrame(dict(artifact='s2vc-tab3', row=['Ours [S3D]'] * 3 + ['MoCo [S3D]'] * 3, column='HMDB51 R@10', seed=[0, 1, 2] * 2,
                      value=[93.1, 94.0, 95.8, 91.0, 92.1, 93.8], config_hash='h', run='r')).to_csv(tmp_path/'s2vc-tab3-seeds.csv', index=False)
    assert set(report.load_seed_values(tmp_path).columns) == set(report.SEED_COLUMNS)
    r = pd.read_csv(report.write_claims(tmp_path)['csv']).set_index('claim').loc['s2vc-tab3-moco-r10']
    assert r.stat_test == 'paired t, n=3' and r.verdict == 'holds'
    assert set(load_results(tmp_path).artifact) == {'s2vc-tab3'}  # the per-seed file is not read as a table

# ---------------------------------------------------------------- per-seed values and one number per evaluation
def _seeds(row='MoCo', values=(20.0, 21.0, 22.0), hashes=('m0', 'm1', 'm2'), column='UCF101 R@1'):
    return pd.DataFrame(dict(row=row, column=column, seed=[0, 1, 2], value=list(values), config_hash=list(hashes), run='s2vc/moco-s3d-ucf101'))

def test_write_table_writes_seed_values(tmp_path):
    cells = pd.DataFrame(dict(row=['MoCo'], column=['UCF101 R@1'], value=[21.0], std=[1.0], n_seeds=[3], config_hash=['m0,m1,m2']))
    paths = write_table('s2vc-tab4', cells, tmp_path, 'mini', seeds=3, seed_values=_seeds())
    sv = pd.read_csv(paths['seeds'])
    assert paths['seeds'].name == 's2vc-tab4-seeds.csv'
    assert list(sv.columns) == list(report.SEED_COLUMNS) and sv.value.tolist() == [20.0, 21.0, 22.0] and set(sv.artifact) == {'s2vc-tab4'}
    with pytest.raises(ValueError, match='do not average'):  # per-seed values in other units than the cells
        write_table('s2vc-tab4', cells, tmp_path, 'mini', seed_values=_seeds(values=(0.20, 0.21, 0.22)))

def test_check_consistency(tmp_path):
    "A folder where every evaluation shows one number passes; one where an evaluation shows two fails, naming it."
    report.write_seed_values('s2vc-tab4', _seeds(), tmp_path)
    report.write_seed_values('s2vc-tab2', _seeds(row='MoCo [S3D]'), tmp_path)  # the same runs, read by another table
    report.write_seed_values('dsm-tab1', _seeds(values=(70.0, 71.0, 72.0), column='UCF101 finetune'), tmp_path)  # another evaluation of them
    assert len(report.check_consistency(tmp_path)) == 9
    report.write_seed_values('dsm-tab4', _seeds(values=(70.0, 71.5, 72.0), column='UCF101 finetune'), tmp_path)  # as from another run store
    with pytest.raises(report.ConsistencyError, match=r'1 evaluation\(s\).*m1 / UCF101 finetune / seed 1: 71 in dsm-tab1 \(MoCo\), 71.5 in dsm-tab4'):
        report.check_consistency(tmp_path)
    (tmp_path/'empty').mkdir()
    assert len(report.check_consistency(tmp_path/'empty')) == 0

def test_table_says_what_ran(tmp_path):
    "At a synthetic profile the heads name the stand-in, the CSV keeps the paper's and the run's setting, repeated runs are named."
    cells = pd.DataFrame(dict(row=['MoCo [S3D]', 'Ours [S3D]', 'Ours [R3D]'], column='UCF101 R@1', value=[20.0, 25.0, 25.0],
                              config_hash=['m0,m1,m2', 's0,s1,s2', 's0,s1,s2'], run_backbone='cnn4s (width 0.5)',
                              run_pretrain_dataset='synth-ucf', run_eval_dataset='synth-ucf', run_input='8x32x32', run_epochs='18'))
    paths = write_table('s2vc-tab2', cells, tmp_path, 'mini', seeds=3)
    md, df = paths['md'].read_text(), pd.read_csv(paths['csv'])
    assert '| Method | UCF101 → synth-ucf R@1 | UCF101 R@5 |' in md  # R@5 was not run here
    assert '| Ours [R3D] (same run as Ours [S3D]) |' in md and '**Synthetic testbed**' in md
    ours = df[(df.row == 'Ours [R3D]') & (df.column == 'UCF101 R@1')].iloc[0]
    assert (ours.paper_backbone, ours.paper_pretrain_dataset, ours.run_backbone, ours.run_pretrain_dataset, ours.run_input) == \
           ('R3D-18', 'UCF101', 'cnn4s (width 0.5)', 'synth-ucf', '8x32x32')
    assert 'backbone' not in df.columns and 'input' not in df.columns
