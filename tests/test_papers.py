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
