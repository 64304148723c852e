"The paper facts ship with the package: the data files are in a built wheel, and load from it."
import subprocess, sys, zipfile
from pathlib import Path
import pytest

from s2vc_repro import papers

ROOT = Path(__file__).resolve().parents[1]

def test_facts_load_and_agree():
    assert len(papers.ARTIFACTS) == 33 and len(papers.CLAIMS) > 150 and len(papers.PAPER_RUNS) >= 30
    # every run the tables of the synthetic profiles share is one config there: S2VC's table rows are bench-bias's S2VC run
    mini = {r: papers.run_config(n, 'mini').hash for r, n in papers.artifact_runs('s2vc-tab1').items()}
    assert mini['Ours [S3D, UCF101]'] == mini['Ours [R3D, K400]'] == papers.run_config('bench/s2vc', 'mini').hash
    assert papers.run_config(papers.artifact_runs('dsm-tab1')['DSM [C3D, UCF101]'], 'mini').hash == papers.run_config('bench/dsm', 'mini').hash

def test_wheel_ships_the_facts(tmp_path):
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w', str(tmp_path), str(ROOT)],
                       capture_output=True, text=True)
    if r.returncode != 0: pytest.fail(f'pip wheel failed: {r.stderr[-2000:]}')
    whl, = tmp_path.glob('s2vc_repro-*.whl')
    names = set(zipfile.ZipFile(whl).namelist())
    facts = sorted(p.name for p in papers.FACTS.iterdir() if p.suffix in ('.csv', '.yaml'))
    assert facts == ['claims.yaml', 'costs.csv', 'inventory.csv', 'papers.csv', 'reported.csv', 'runs.yaml']
    assert {f's2vc_repro/paper_facts/{f}' for f in facts} <= names

def test_stand_in_maps_real_evaluation_sets_on_synthetic_data():
    "A paper's evaluation set is its synthetic stand-in for a run on synthetic data, itself otherwise; a set without one is named."
    import pytest
    from s2vc_repro.config import get_config, stand_in, ConfigError
    mini, paper = get_config('mini'), get_config('paper')
    assert [stand_in(d, mini) for d in ('ucf101', 'hmdb51', 'diving48')] == ['synth-ucf', 'synth-hmdb', 'synth-dive']
    assert stand_in('diving48', paper) == 'diving48' and stand_in('synth-hmdb', mini) == 'synth-hmdb'
    with pytest.raises(ConfigError, match='datasets with one: ucf101, hmdb51, diving48'): stand_in('k400', mini)

# ---------------------------------------------------------------- what a profile can test
from s2vc_repro.papers import CLAIMS, claim_testability, claim_twins, cell_identity, among_items

# the tests that the synthetic profiles repeat: at mini the rows that differ only in backbone or pre-training set are one run,
# S2VC's Table 2/3 R@1 and Table 4's 'set to 0' compare the same two runs, and DSM Fig. 4 at 100% of the labels is Table 1's
# UCF101 finetune (the run's own pre-training set is synth-ucf, UCF101's stand-in)
MINI_TWINS = {
    'dsm-tab1-moco-i3d-k400-ucf101': 'dsm-tab1-moco-c3d-ucf101-ucf101', 'dsm-tab1-moco-i3d-k400-hmdb51': 'dsm-tab1-moco-c3d-ucf101-hmdb51',
    'dsm-tab1-triplet-moco-i3d-k400-ucf101': 'dsm-tab1-triplet-moco-c3d-ucf101-ucf101',
    'dsm-tab1-triplet-moco-i3d-k400-hmdb51': 'dsm-tab1-triplet-moco-c3d-ucf101-hmdb51',
    'dsm-tab1-contrastive-i3d-k400-ucf101': 'dsm-tab1-contrastive-c3d-ucf101-ucf101',
    'dsm-tab1-contrastive-i3d-k400-hmdb51': 'dsm-tab1-contrastive-c3d-ucf101-hmdb51',
    'dsm-tab1-contrastive-r3d-34-k400-ucf101': 'dsm-tab1-contrastive-c3d-ucf101-ucf101',
    'dsm-tab1-contrastive-r3d-34-k400-hmdb51': 'dsm-tab1-contrastive-c3d-ucf101-hmdb51',
    'dsm-tab1-random-i3d-k400-ucf101': 'dsm-tab1-random-c3d-ucf101-ucf101', 'dsm-tab1-random-i3d-k400-hmdb51': 'dsm-tab1-random-c3d-ucf101-hmdb51',
    'dsm-tab1-random-r3d-34-k400-ucf101': 'dsm-tab1-random-c3d-ucf101-ucf101', 'dsm-tab1-random-r3d-34-k400-hmdb51': 'dsm-tab1-random-c3d-ucf101-hmdb51',
    'dclr-tab2-random-k400': 'dclr-tab2-random-ucf101',
    's2vc-tab4-disturb-s2vc-set-to-0-default-ucf101': 's2vc-tab2-moco-r1', 's2vc-tab4-disturb-s2vc-set-to-0-default-hmdb51': 's2vc-tab3-moco-r1',
    'dsm-fig4-moco-100': 'dsm-tab1-moco-c3d-ucf101-ucf101', 'dsm-fig4-triplet-100': 'dsm-tab1-triplet-moco-c3d-ucf101-ucf101',
}

def test_twins_at_mini():
    assert claim_twins(profile='mini') == MINI_TWINS
    assert claim_twins(profile='paper') == {}  # distinct runs (or evaluations) at the paper profile

def test_same_run_claims_not_testable_at_mini():
    for cid in ('dclr-tab1-finetune-k400-ucf101', 'dclr-tab1-finetune-k400-hmdb51'):
        why = claim_testability(next(c for c in CLAIMS if c.id == cid), 'mini')
        assert why.startswith('both sides resolve to the same run at mini') and 'dclr/dclr-r2plus1d18-ucf101' in why, why
    for cid in ('dclr-tab1-linear-best-ucf101', 'dclr-tab1-linear-best-hmdb51'):  # the best of a table of cited rows
        assert claim_testability(next(c for c in CLAIMS if c.id == cid), 'mini')

def test_no_testable_claim_compares_a_run_with_itself():
    "At every profile, a claim left testable has, against each right side, a cell that differs once resolved."
    for profile in ('smoke', 'mini', 'paper'):
        for c in CLAIMS:
            if claim_testability(c, profile): continue
            lhs = {cell_identity(a or c.artifact, r, col, profile) for _, a, r, col in c.lhs.terms}
            sides = among_items(c) if hasattr(c.rhs, 'agg') else [c.rhs]
            for e in sides:
                rhs = {cell_identity(a or c.artifact, r, col, profile) for _, a, r, col in getattr(e, 'terms', ())}
                assert lhs != rhs, (profile, c.id)

def test_cited_and_by_construction_claims():
    "Claims on cited rows are tested at the paper profile only (the decision dsm-tab2's notebook used to make); by-construction claims nowhere."
    c = next(c for c in CLAIMS if c.id == 'dsm-tab2-cliporder-r1')
    assert 'cites from other work' in claim_testability(c, 'mini') and claim_testability(c, 'paper') == ''
    kept = [c for c in CLAIMS if c.id.startswith('s2vc-fig3-kept-')]
    assert len(kept) == 2 and all(claim_testability(c, p).startswith('holds by construction') for c in kept for p in ('smoke', 'mini', 'paper', None))
    noise = next(c for c in CLAIMS if c.id == 'dsm-fig6-noise')
    assert noise.tol == 1.0 and noise.tol_reason
    assert {c.id for c in CLAIMS if c.by_construction} == {'s2vc-fig3-kept-ucf101', 's2vc-fig3-kept-hmdb51'}
