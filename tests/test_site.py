"The results site (s2vc_repro.site) in a real browser: headless Chromium loads the index and every page it links; links resolve, images load."
import base64, functools, http.server, json, shutil, subprocess, threading
import numpy as np
from pathlib import Path
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import nbformat
import pandas as pd
import pytest

from s2vc_repro.report import save_figure, write_claims, write_table
from s2vc_repro.reproduce import PaperNotebook, artifact_statuses, render_index
from s2vc_repro.site import build_site
from s2vc_repro.card import report_card, index_cards

CHROMIUM = next((shutil.which(b) for b in ('chromium', 'chromium-browser', 'google-chrome') if shutil.which(b)), None)

# The checker runs in the browser, on the same origin as the site: it loads the index, then every page the index
# links (in an iframe), and reports for each page whether it loaded, which of its images did not load and which of
# its local links do not resolve (fetched). External links (http:, https:) are not followed.
CHECKER = """<!DOCTYPE html><html><body><pre id="result">running</pre><script>
const local = u => u && !/^([a-z][a-z0-9+.-]*:|#|\\/)/i.test(u);
const sleep = ms => new Promise(r => setTimeout(r, ms));
function load(url) {
  return new Promise(resolve => {
    const f = document.createElement('iframe'); f.style.width = '1200px'; f.style.height = '800px';
    f.onload = () => setTimeout(() => resolve(f), 200); f.src = url; document.body.appendChild(f);
  });
}
async function typeset(w) {  // wait until MathJax (if the page has it) has typeset the page
  for (let k = 0; k < 100 && w.MathJax && !w.MathJax.Hub; k++) await sleep(100);
  if (w.MathJax && w.MathJax.Hub) await Promise.race([new Promise(r => w.MathJax.Hub.Queue(r)), sleep(20000)]);
}
function filters(doc) {  // the claims dashboard: each option of each filter shows exactly the rows it selects
  const out = [], rows = [...doc.querySelectorAll('tr[data-verdict]')];
  for (const k of ['paper', 'verdict', 'artifact']) {
    const s = doc.getElementById('f-' + k); if (!s) continue;
    for (const o of [...s.options].filter(o => o.value)) {
      s.value = o.value; s.dispatchEvent(new Event('change'));
      out.push({k, v: o.value, shown: rows.filter(r => !r.hidden).length, expected: rows.filter(r => r.dataset[k] === o.value).length, total: rows.length});
    }
    s.value = ''; s.dispatchEvent(new Event('change'));
  }
  return out;
}
async function check(url, index) {
  url = new URL(url, location.href).href;
  const r = await fetch(url); if (!r.ok) return {url, ok: false, status: r.status};
  const f = await load(url); const doc = f.contentDocument, w = f.contentWindow; const base = w.location.href;
  await typeset(w);
  const imgs = [...doc.images];
  await Promise.all(imgs.map(i => i.complete ? 0 : new Promise(res => { i.onload = i.onerror = res; })));
  const badImgs = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src').slice(0, 80));
  const hrefs = [...doc.querySelectorAll('a[href]')].map(a => a.getAttribute('href')).filter(local);
  const badLinks = [];
  for (const h of hrefs) { const u = new URL(h, base).href.split('#')[0]; const s = (await fetch(u)).status; if (s != 200) badLinks.push(h + ' ' + s); }
  const external = [...doc.querySelectorAll('script[src],link[href],img[src],iframe[src]')].map(e => e.src || e.href)
    .filter(u => u && !u.startsWith(location.origin) && !u.startsWith('data:'));
  const failed = w.performance.getEntriesByType('resource').filter(e => !e.name.startsWith(location.origin) || e.responseStatus >= 400).map(e => e.name);
  return {url, ok: true, title: doc.title, images: imgs.length, links: hrefs.length, badImgs, badLinks, external, failed,
          pipes: doc.body.innerText.includes('\\\\|'),
          math: doc.querySelectorAll('.MathJax, .MathJax_Display, .MathJax_MathML, .MathJax_CHTML, mjx-container').length,
          toIndex: [...doc.querySelectorAll('a[href]')].some(a => a.href.split('#')[0] === index),
          filters: url.endsWith('/claims.html') ? filters(doc) : null,
          pages: hrefs.map(h => new URL(h, base).href.split('#')[0]).filter(u => u.endsWith('.html'))};
}
(async () => {
  const out = [], index = new URL('index.html', location.href).href, seen = new Set([index]), todo = [index];
  try {
    while (todo.length && out.length < 200) {  // every page reachable from the index
      const p = await check(todo.shift(), index); out.push(p);
      for (const u of p.pages || []) if (!seen.has(u)) { seen.add(u); todo.push(u); }
    }
  } catch (e) { out.push({error: String(e)}); }
  document.getElementById('result').textContent = 'RESULT' + JSON.stringify(out);
})();
</script></body></html>"""


def small_results(d: Path) -> Path:
    "A results folder: a table with claims, a figure, an executed notebook with a picture, claims.md and index.md."
    write_table('s2vc-tab4', pd.DataFrame(dict(row=['MoCo', 'TFD'], column='UCF101 R@1', value=[20.0, 25.0], std=1.0, n_seeds=3)), d, 'smoke', seeds=3)
    fig, ax = plt.subplots(figsize=(2, 1.5)); ax.bar(['a', 'b'], [1, 2])
    save_figure(fig, 's2vc-fig1', d); plt.close(fig)
    png = base64.b64encode((d/'s2vc-fig1.png').read_bytes()).decode()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell('# executed\n\nwith math: $x^2 + y^2$'), nbformat.v4.new_code_cell('plot()', outputs=[
        nbformat.v4.new_output('display_data', data={'image/png': png, 'text/plain': '<Figure>'})])])
    (d/'notebooks'/'tutorials').mkdir(parents=True)
    nbformat.write(nb, str(d/'notebooks'/'s2vc-tab4.ipynb')); nbformat.write(nb, str(d/'notebooks'/'tutorials'/'s2vc.ipynb'))
    (d/'s2vc-tab4.md').write_text((d/'s2vc-tab4.md').read_text() + '\n\nThe share $A_s$ of latent dimensions kept, and $$\\sum_i x_i^2$$\n')
    (d/'bench-mechanisms.md').write_text('# A testbed report\n\nMade by a script, linked from no table.\n')
    write_claims(d)
    tiny = d.parent/'tiny.py'  # a scene-bias card made inside the folder, as `s2vc-repro card --out <results>/cards/<name>` makes one
    tiny.write_text("import torch, torch.nn as nn\ndef net():\n    torch.manual_seed(0)\n"
                    "    m = nn.Sequential(nn.Conv3d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv3d(8, 8, 3, stride=2))\n"
                    "    m.input_frames, m.input_size = 4, 16\n    return m\n")
    report_card(f'{tiny}:net', d/'cards'/'tiny', n_train=16, n_test=8, seeds=(0, 1, 2), data_root=d.parent, reference=False)
    index_cards(d)
    found = [PaperNotebook(Path('nbs/papers/s2vc/s2vc-tab4.ipynb'), ['s2vc-tab4']), PaperNotebook(Path('nbs/papers/s2vc/s2vc-fig1.ipynb'), ['s2vc-fig1'])]
    st = artifact_statuses(found, {'s2vc-tab4': dict(status='done', files=['s2vc-tab4.md', 's2vc-tab4.csv'], executed='notebooks/s2vc-tab4.ipynb'),
                                   's2vc-fig1': dict(status='done', files=['s2vc-fig1.md', 's2vc-fig1.png'])})
    (d/'manifest.json').write_text('{}')
    tuts = [dict(notebook='nbs/tutorials/s2vc.ipynb', executed='notebooks/tutorials/s2vc.ipynb', status='done', wall_s=1.0, error=None)]
    (d/'index.md').write_text(render_index(d, 'smoke', st, tutorials=tuts))
    return d


def browse(site: Path) -> list:
    "Serve `site` on localhost and run the checker page in headless Chromium; the checker's report."
    (site/'_checker.html').write_text(CHECKER)
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
    handler = functools.partial(Quiet, directory=str(site))
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        out = subprocess.run([CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
                              '--virtual-time-budget=60000', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1', '--dump-dom', f'http://127.0.0.1:{srv.server_address[1]}/_checker.html'],
                             capture_output=True, text=True, timeout=300)
    finally: srv.shutdown()
    dom = out.stdout
    assert 'RESULT' in dom, f'the checker did not finish; chromium said: {out.stderr[-2000:]}'
    import html
    return json.loads(html.unescape(dom.split('RESULT', 1)[1].split('</pre>', 1)[0]))


@pytest.mark.skipif(CHROMIUM is None, reason='needs a headless chromium (apt-get install chromium)')
def test_site_in_chromium(tmp_path):
    "With the network blocked: every page reachable from the index loads whole, renders its math, shows no escaped pipe and leads back to the index."
    d = small_results(tmp_path/'smoke')
    build_site(d)
    report = browse(d/'site')
    pages = {p['url'].split('/', 3)[3]: p for p in report}  # path in the site
    assert not [p for p in report if 'error' in p or not p.get('ok')], report
    # the index and every page it links loaded; nothing broken on any of them
    assert {'index.html', 'claims.html', 'claims-text.html', 's2vc-tab4.html', 's2vc-fig1.html', 'bench-mechanisms.html'} <= set(pages), sorted(pages)
    assert {'notebooks/s2vc-tab4.html', 'notebooks/tutorials/s2vc.html'} <= set(pages), sorted(pages)
    assert {'cards.html', 'cards/tiny/card.html'} <= set(pages), sorted(pages)  # the card, reached from the index's card section
    assert pages['cards/tiny/card.html']['images'] >= 1 and pages['cards.html']['links'] >= 1
    assert 'Scene-bias cards' in (d/'site'/'index.html').read_text()
    for p in report:
        assert p['badImgs'] == [] and p['badLinks'] == [], p
        assert p['external'] == [] and p['failed'] == [], p  # no request leaves the machine, none fails
        assert not p['pipes'], p['url']  # no literal \| (escaped pipes of table cells)
        assert p['toIndex'], p['url']
    # math is typeset by the site's own MathJax: on the artifact page and in the executed notebooks
    assert pages['s2vc-tab4.html']['math'] >= 2 and pages['notebooks/s2vc-tab4.html']['math'] >= 1, report
    # pictures are really there: the figure page and the executed notebooks show theirs
    assert pages['s2vc-fig1.html']['images'] == 1
    assert all(p['images'] >= 1 for p in report if '/notebooks/' in p['url'])
    assert pages['index.html']['links'] >= 6
    # the claims dashboard: every filter option shows exactly the rows it selects
    f = pages['claims.html']['filters']
    assert {x['k'] for x in f} == {'paper', 'verdict', 'artifact'} and all(x['shown'] == x['expected'] for x in f), f
    assert any(0 < x['shown'] < x['total'] for x in f), f  # a filter that leaves rows out and keeps some

@pytest.mark.skipif(CHROMIUM is None, reason='needs a headless chromium (apt-get install chromium)')
def test_checker_sees_broken_pages(tmp_path):
    "The check can fail: a missing picture and a dead link are reported."
    d = small_results(tmp_path/'smoke')
    (d/'s2vc-tab4.md').write_text((d/'s2vc-tab4.md').read_text() + '\n\n![gone](gone.png) [dead](nowhere.md)\n')
    build_site(d)
    page = {p['url'].split('/', 3)[3]: p for p in browse(d/'site')}['s2vc-tab4.html']
    assert page['badImgs'] == ['gone.png'] and page['badLinks'] == ['nowhere.html 404']


def test_site_needs_results(tmp_path):
    with pytest.raises(FileNotFoundError, match='reproduce'): build_site(tmp_path)

def screenshot(site: Path, page: str, out: Path, width: int = 1400, height: int = 1000) -> 'np.ndarray':
    "A headless-chromium screenshot of `page` of `site` (served on localhost, network blocked), as an RGB array."
    import numpy as np
    from PIL import Image
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        subprocess.run([CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--hide-scrollbars',
                        '--virtual-time-budget=20000', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1', f'--window-size={width},{height}',
                        f'--screenshot={out}', f'http://127.0.0.1:{srv.server_address[1]}/{page}'], capture_output=True, text=True, timeout=300)
    finally: srv.shutdown()
    assert out.exists(), f'chromium wrote no screenshot of {page}'
    return np.asarray(Image.open(out).convert('RGB')).astype(int)


@pytest.mark.skipif(CHROMIUM is None, reason='needs a headless chromium (apt-get install chromium)')
def test_screenshots_show_rendered_math_and_coloured_verdicts(tmp_path):
    "What a reader sees, compared in screenshots: typeset math differs from the raw TeX of the same page, and the claims dashboard shows each verdict's colour."
    import re
    d = small_results(tmp_path/'smoke')
    build_site(d)
    site = d/'site'
    page = (site/'notebooks'/'s2vc-tab4.html').read_text()  # an executed notebook whose first cell holds math
    raw = re.sub(r'<script[^>]*(mathjax|MathJax)[^>]*>.*?</script>', '', page, flags=re.S | re.I)  # the same page, its math left as TeX
    assert raw != page
    (site/'notebooks'/'s2vc-tab4-raw.html').write_text(raw)
    a, b = screenshot(site, 'notebooks/s2vc-tab4.html', tmp_path/'math.png'), screenshot(site, 'notebooks/s2vc-tab4-raw.html', tmp_path/'raw.png')
    assert a.shape == b.shape and (a < 200).any(axis=2).sum() > 1000  # a page with text on it
    assert (abs(a - b).sum(axis=2) > 60).sum() > 200, 'the typeset math looks like the raw TeX'
    shot = screenshot(site, 'claims.html', tmp_path/'claims.png', height=8000)  # the whole dashboard
    colours = {v: tuple(int(h[i:i + 2], 16) for i in (1, 3, 5)) for v, h in re.findall(r'\.v-([a-z-]+)\{background:(#[0-9a-f]{6})[;}]', (site/'claims.html').read_text())}
    verdicts = {tr for tr in re.findall(r'<tr[^>]*data-verdict="([^"]+)"', (site/'claims.html').read_text())}
    assert colours and verdicts
    for v in verdicts:  # every verdict on the page is painted in its colour, over a visible area
        slug = re.sub(r'[^a-z0-9]+', '-', v.lower()).strip('-')
        assert slug in colours, (v, colours)
        assert (abs(shot - np.array(colours[slug])).sum(axis=2) <= 6).sum() > 500, f'no {v} row colour ({colours[slug]}) in the screenshot'
