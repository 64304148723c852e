"README's Python blocks run as they are written, in order, in one namespace (as a reader would paste them)."
import re, textwrap
from pathlib import Path
import torch

README = Path(__file__).resolve().parents[1]/'README.md'


def python_blocks(text: str) -> list[str]:
    "The ```python blocks of a markdown text, dedented (blocks inside list items are indented)."
    return [textwrap.dedent(b) for b in re.findall(r'^[ \t]*```python\n(.*?)^[ \t]*```', text, flags=re.S | re.M)]


def test_python_blocks_are_found():
    blocks = python_blocks('intro\n\n   ```python\n   a = 1\n   b = a + 1\n   ```\n\n```bash\nls\n```\n```python\nc = 2\n```\n')
    assert blocks == ['a = 1\nb = a + 1\n', 'c = 2\n']


def test_readme_python_blocks_run(one_thread):
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 5, f'README has {len(blocks)} python blocks'
    ns = {}
    for k, b in enumerate(blocks): exec(compile(b, f'README.md python block {k + 1}', 'exec'), ns)
    x = ns['x']
    assert x.shape == (1, 3, 16, 32, 32) and 0 <= x.min() and x.max() <= 1
    assert ns['motion'].shape == x.shape and 0 < float(ns['kept']) <= 1                       # S2VC
    assert ns['positive'].shape == x.shape and not torch.allclose(ns['positive'], x)           # DSM positive
    assert ns['negative'].shape == x.shape and torch.equal(ns['negative'][:, :, 0], x[:, :, 0])  # DSM negative: frame 0 kept
    assert ns['v'].shape == ns['s'].shape == ns['d'].shape == (1, 3, 15, 32, 32)              # DCLR
    assert torch.equal(ns['s'][:, :, 0], ns['s'][:, :, -1])                                   # s does not move
    assert torch.isfinite(ns['out']['loss']) and ns['net'].feat_dim > 0


def test_readme_card_commands(tmp_path):
    "The commands of 'Check your own checkpoint' run as written, the card on a smaller testbed (16 training videos, 8 per split)."
    import os, subprocess
    sec = README.read_text().split('## Check your own checkpoint', 1)[1].split('\n## ', 1)[0]
    cmds = [l for l in re.search(r'```bash\n(.*?)```', sec, flags=re.S).group(1).splitlines() if l.strip()]
    assert len(cmds) == 2 and cmds[1].startswith('s2vc-repro card ')
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(README.parent), os.environ.get('PYTHONPATH', '')])}
    for c in cmds[:1] + [cmds[1] + ' --videos 16 --test-videos 8 --data no-data']:
        r = subprocess.run(c, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                           executable='/bin/bash' if os.path.exists('/bin/bash') else None)
        assert r.returncode == 0, f'{c}\n{r.stderr[-2000:]}'
    out = tmp_path/'cards'/'my_r3d'
    assert {'card.md', 'card.html', 'card.json', 'card.png'} <= {p.name for p in out.iterdir()}
    import json
    j = json.loads((out/'card.json').read_text())
    assert j['model']['arch'] == 'r3d_18' and (j['input']['frames'], j['input']['size']) == (8, 32) and j['reference'] is not None
    assert r.stdout.splitlines()[0] == 'cards/my_r3d/card.md'
