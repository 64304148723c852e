"Every notebook under nbs/ runs under `nbdev_test` (library notebooks and the smoke-profile paper notebooks)."
import os, subprocess, sys
from pathlib import Path
import pytest
from s2vc_repro.notebook import SCRATCH_ENV

NBS = Path(__file__).resolve().parents[1]/'nbs'
NOTEBOOKS = sorted(p for p in NBS.rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts and not p.name.startswith('_'))

def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 1

@pytest.fixture(scope='module')
def scratch(tmp_path_factory):
    "One run store and data root for every smoke notebook of the session, shared by its workers (`$S2VC_TEST_SCRATCH` when set, as `.ci/run` sets it): a run one notebook trains, the next reads."
    if os.environ.get('S2VC_TEST_SCRATCH'): return Path(os.environ['S2VC_TEST_SCRATCH'])
    base = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'): base = base.parent  # one folder for all pytest-xdist workers: the store's locks make it safe
    (d := base/'notebooks').mkdir(exist_ok=True)
    return d

@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[str(p.relative_to(NBS)) for p in NOTEBOOKS])
def test_notebook_runs(nb, scratch):
    env = {**os.environ, SCRATCH_ENV: str(scratch)}
    r = subprocess.run([str(Path(sys.executable).parent/'nbdev_test'), '--path', str(nb), '--do_print'], capture_output=True, text=True,
                       cwd=NBS.parent, env=env)
    assert r.returncode == 0, f'{nb.name} failed under nbdev_test:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}'
