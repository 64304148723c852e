"The committed output of the main job, `results/mini`: one finished `reproduce` call on one store, from a clean tree, one number per evaluation."
import json
from pathlib import Path
import pandas as pd
from s2vc_repro.papers import ARTIFACTS
from s2vc_repro.report import check_consistency

MINI = Path(__file__).resolve().parents[1]/'results'/'mini'

def manifest(): return json.loads((MINI/'manifest.json').read_text())

def test_mini_is_one_finished_call_from_a_clean_tree():
    m = manifest()
    assert m['profile'] == 'mini' and m['call']['state'] == 'finished', m.get('call')
    assert m['command'].split()[:2] == ['s2vc-repro', 'reproduce'] and '--only' not in m['command'], m['command']  # every artifact, one call
    assert m['wall_s'] > 0 and m['consistency']['ok'], (m['wall_s'], m.get('consistency'))
    assert m['git']['dirty'] is False, m['git']
    assert set(m['artifacts']) == set(ARTIFACTS) and {a['status'] for a in m['artifacts'].values()} == {'done'}
    for i, a in m['artifacts'].items():  # made by this call: after it started, at its commit, under the profile it recorded
        assert a['finished'] >= m['started'] and a['git'] == m['git']['commit'], (i, a['finished'], a['git'])
        assert a['profile_config_hash'] == m['profile_config_hash'], i
    assert all(t['status'] == 'done' for t in m['tutorials']), m['tutorials']

def test_mini_one_store_one_number():
    vals = check_consistency(MINI)  # raises when one (config hash, evaluation, seed) shows two values
    assert len(vals) >= 1100, len(vals)  # 1,119 in the committed call  # every table keeps its per-seed values
    seeds = pd.concat([pd.read_csv(p) for p in MINI.glob('*-seeds.csv')])
    assert not seeds['run'].fillna('').astype(str).str.contains('+dirty', regex=False).any()

def test_mini_claims_say_what_was_run():
    head = (MINI/'claims.md').read_text().splitlines()[:4]
    assert any('synthetic testbed' in l for l in head), head
    claims = pd.read_csv(MINI/'claims.csv')
    assert len(claims) and not claims.verdict.isna().any()
