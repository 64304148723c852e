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
