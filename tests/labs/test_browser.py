"""Every lab in real JupyterLab and headless Chromium: Run All, no errors, widgets drawn, a control moves them.

One JupyterLab server (127.0.0.1, free port, random token) serves a copy of labs/ (outputs stripped, so
what we see is this run) plus the fixture notebook; Playwright drives Debian's /usr/bin/chromium (never
`playwright install`). Per lab: open, Run > Run All Cells, wait for the kernel to be idle with every
prompt numbered, assert no traceback and no tofu (a CJK character drawn as the missing-glyph box), assert
the selectors of its row in lab_expectations.py; photograph the lab's declared visual moment (a widget),
move a control *inside it*, assert its view changed and its pixels too, and that every label it draws is
at least MIN_LABEL_PX high on screen; photograph the row's extra widgets the same way. Screenshots go to
test-artifacts/screenshots/<lab>/, per-step timings to test-artifacts/browser_timings.json.

Env: CHROMIUM (default /usr/bin/chromium); AISYS_REQUIRE_BROWSER=1 turns "no Chromium" from a skip into
a failure (make test sets it); AISYS_TEST_ARTIFACTS (default ./test-artifacts).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from tests.labs.lab_expectations import EXPECTATIONS, MIN_LABEL_PX, validate, widget_spec
from tests.labs.notebooks import FIXTURE, LABS_DIR, REPO, lab_notebooks, notebook_id

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("AISYS_TEST_ARTIFACTS", REPO / "test-artifacts"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic",
                 "--disable-dev-shm-usage"]  # containers often have a 64 MB /dev/shm
# JupyterLab user settings for a quiet, deterministic UI during the test.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
    # every cell in the DOM (JupyterLab <= 4.4 detaches off-screen cells by default)
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
NOTEBOOKS = lab_notebooks()
FIXTURE_DIR = "_fixtures"  # where the fixture notebook sits in the served copy
RUN_ALL_TIMEOUT_MS = 300_000
TIMINGS: dict[str, dict[str, float]] = {}
NOTES: list[str] = []     # what went wrong outside our code (written to test-artifacts/browser_notes.txt)



def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _served_path(path: Path) -> str:
    return f"{FIXTURE_DIR}/{path.name}" if path == FIXTURE else path.relative_to(LABS_DIR).as_posix()


def _copy_stripped(src: Path, dst: Path) -> None:
    """The notebook without outputs and execution counts, so every prompt we see numbered ran now."""
    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)


class Timer:
    def __init__(self, label: str):
        self.label, self.t0 = label, time.perf_counter()
        self.last, self.steps = self.t0, {}

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.steps[step] = round(now - self.last, 2)
        self.last = now
        print(f"  [{self.label}] {now - self.t0:6.1f}s (+{self.steps[step]:5.1f}s) {step}", flush=True)

    def total(self) -> dict[str, float]:
        return {**self.steps, "total": round(time.perf_counter() - self.t0, 2)}


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    """JupyterLab on 127.0.0.1:<free port> serving a stripped copy of labs/; yields (base_url, token, api)."""
    timer = Timer("server")
    root = tmp_path_factory.mktemp("lab-root")
    state = tmp_path_factory.mktemp("lab-state")
    if LABS_DIR.exists():
        shutil.copytree(LABS_DIR, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for path in NOTEBOOKS:
        _copy_stripped(path, root / _served_path(path))
    for rel, content in LAB_SETTINGS.items():
        f = state / "settings" / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(content))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, AISYS_LAB_SOLUTIONS="1", OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
               PYTHONHASHSEED="0", JUPYTER_RUNTIME_DIR=str(state / "runtime"),
               JUPYTER_CONFIG_DIR=str(state / "config"), JUPYTER_DATA_DIR=str(state / "data"),
               IPYTHONDIR=str(state / "ipython"))
    env.pop("VSCODE_PID", None)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           f"--LabApp.user_settings_dir={state / 'settings'}", f"--LabApp.workspaces_dir={state / 'workspaces'}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # jupyter refuses to start as root otherwise
    log_path = state / "server.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"

    def api(path: str, method: str = "GET"):
        req = urllib.request.Request(base + path, method=method, headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(req, timeout=10) as response:
            body = response.read()
            return response.status, (json.loads(body) if body else None)

    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            log.flush()
            pytest.fail("jupyter lab exited:\n" + log_path.read_text()[-3000:])
        try:
            if api("/api/status")[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("jupyter lab not ready in 120 s:\n" + log_path.read_text()[-3000:])
        time.sleep(0.25)
    timer.lap("server ready")
    TIMINGS["_server_start"] = timer.total()
    yield base, token, api
    try:  # shutting the server down also stops its kernels
        api("/api/shutdown", method="POST")
    except OSError:
        pass
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log.close()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(log_path, ARTIFACTS / "jupyterlab_server.log")


def _require(ok: bool, message: str) -> None:
    """Skip when the browser stack is missing, unless AISYS_REQUIRE_BROWSER=1 (make test) makes it a failure."""
    if not ok:
        if os.environ.get("AISYS_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def sync_api():
    try:
        from playwright import sync_api as api
    except ImportError:
        api = None
    _require(api is not None, "the playwright package is missing (pip install -e '.[test]')")
    return api


@pytest.fixture(scope="module")
def browser(sync_api):
    _require(Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM} (Debian: apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


# Resolves to "done" when the kernel is idle and every code prompt is numbered, "error" when a cell
# raised (Run All then stops and the remaining prompts are never numbered).
_RUN_STATE_JS = """(n) => {
    const outputs = [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output')];
    if (outputs.some(o => o.innerText.includes('Traceback (most recent call last)'))) return 'error';
    const bar = document.querySelector('#jp-main-statusbar');
    if (!bar || !/\\| Idle/.test(bar.innerText)) return false;
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
    return prompts.length === n && prompts.every(p => /\\[\\d+\\]/.test(p.textContent)) ? 'done' : false;
}"""
_COUNT_AT_LEAST_JS = "([sel, n]) => document.querySelectorAll(sel).length >= n"
# innerHTML of every match of `sel` inside `el` (or of `el` itself when sel is empty)
_HTML_IN_JS = "([el, sel]) => sel ? [...el.querySelectorAll(sel)].map(e => e.innerHTML).join('\\u0000') : el.innerHTML"

# Every visible text label an element draws (SVG <text>, graphviz and plotly alike) with its on-screen size:
# the font size times the SVG's current scale (a graph squeezed into a narrow pane has tiny labels).
_LABEL_SIZES_JS = """(el) => {
    const out = [];
    for (const t of el.querySelectorAll('svg text')) {
        const text = t.textContent.trim();
        if (!text) continue;
        const box = t.getBoundingClientRect();
        if (box.width === 0 || box.height === 0) continue;
        const m = t.getScreenCTM();
        const scale = m ? Math.hypot(m.a, m.b) : 1;
        out.push([Math.round(parseFloat(getComputedStyle(t).fontSize) * scale * 10) / 10, text.slice(0, 40)]);
    }
    return out;
}"""

# CJK characters in the rendered notebook that the browser draws as the missing-glyph box ("tofu"): each is
# drawn on a canvas in its element's font and compared with an unassigned code point (U+0378), which every
# font renders as .notdef.
_TOFU_JS = """() => {
    const roots = [...document.querySelectorAll('.jp-Notebook .jp-RenderedMarkdown, .jp-Notebook .jp-OutputArea-output')];
    const found = new Map();
    for (const r of roots)
        for (const ch of r.innerText)
            if (/[\\p{Script=Han}\\p{Script=Hiragana}\\p{Script=Katakana}\\p{Script=Hangul}]/u.test(ch) && !found.has(ch))
                found.set(ch, getComputedStyle(r).fontFamily);
    const c = document.createElement('canvas');
    c.width = c.height = 40;
    const ctx = c.getContext('2d', {willReadFrequently: true});
    const draw = (ch, family) => {
        ctx.clearRect(0, 0, 40, 40);
        ctx.font = `28px ${family}`;
        ctx.fillText(ch, 4, 30);
        const d = ctx.getImageData(0, 0, 40, 40).data;
        let h = 0;
        for (let i = 3; i < d.length; i += 4) h = (h * 31 + d[i]) >>> 0;
        return h;
    };
    const tofu = [...found].filter(([ch, family]) => draw(ch, family) === draw('\\u0378', family)).map(([ch]) => ch);
    return {checked: found.size, tofu: tofu};
}"""


def _widget(page, spec: dict):
    return page.locator(spec["widget"]).nth(spec.get("nth", 0))


def _move_control(page, scope, control: dict) -> str:
    """Move one control inside ``scope`` (the widget being photographed), as a person would."""
    if "slider" in control:
        handle = scope.locator(".widget-slider .noUi-handle").nth(control["slider"])
        handle.scroll_into_view_if_needed()
        handle.focus()
        for _ in range(control.get("presses", 1)):
            page.keyboard.press(control.get("key", "ArrowRight"))
        return f"slider #{control['slider']} {control.get('key', 'ArrowRight')} x{control.get('presses', 1)}"
    if "button" in control:
        button = scope.locator(".widget-button", has_text=control["button"]).first
        button.scroll_into_view_if_needed()
        button.click()
        return f"button {control['button']!r}"
    if "toggle" in control:
        button = scope.locator(".widget-toggle-button", has_text=control["toggle"]).first
        button.scroll_into_view_if_needed()
        button.click()
        return f"toggle button {control['toggle']!r}"
    if "dropdown" in control:
        select = scope.locator(".widget-dropdown select").nth(control["dropdown"])
        select.scroll_into_view_if_needed()
        select.select_option(label=control["option"])
        return f"dropdown #{control['dropdown']} -> {control['option']!r}"
    box = scope.locator(".widget-checkbox input[type=checkbox]").nth(control["checkbox"])
    box.scroll_into_view_if_needed()
    box.click()
    return f"checkbox #{control['checkbox']}"


def _legibility_problems(name: str, what: str, widget) -> list[str]:
    sizes = widget.evaluate(_LABEL_SIZES_JS)
    small = sorted(s for s in sizes if s[0] < MIN_LABEL_PX)
    if not small:
        return []
    shown = ", ".join(f"{text!r} {px:g}px" for px, text in small[:6])
    return [f"{name}: {len(small)} of {len(sizes)} labels of {what} are drawn below {MIN_LABEL_PX} px at "
            f"JupyterLab's width (smallest: {shown}); draw the widget at a readable scale (a focused view, "
            f"collapsed regions, zoom/pan) instead of shrinking it to fit"]


_CONTROLS = (".widget-slider, .widget-play, .widget-dropdown, .widget-checkbox, .widget-toggle-buttons, "
             ".widget-button, .widget-text, .widget-readout")


# plotly draws a FigureWidget when it becomes visible: wait until every plot inside has drawn its traces
_DRAWN_JS = """(el) => [...el.querySelectorAll('.js-plotly-plot')].every(
    p => p.querySelector('.scatterlayer .trace, .barlayer .trace, .heatmaplayer .hm'))"""


def _show(widget) -> bool:
    """Scroll the widget into view and let it finish drawing (plotly lays out lazily).

    False when a plotly figure inside never drew its traces: plotly's FigureWidget (an anywidget) now and then
    renders an empty first view in JupyterLab, on a loaded machine, whatever the figure holds (seen on the
    UtilizationView and MemoryTimeline as well); that is noted in the artifacts, not failed here."""
    widget.scroll_into_view_if_needed()
    try:
        widget.page.wait_for_function(_DRAWN_JS, arg=widget.element_handle(), timeout=30_000)
        drawn = True
    except Exception:
        drawn = False
    widget.page.wait_for_timeout(250)
    return drawn


def _photograph(widget, path: Path | None = None) -> bytes:
    """Save a screenshot of the widget; return one with its controls masked (what the change must alter)."""
    if not _show(widget):
        NOTES.append(f"{path}: a plotly figure in this widget never drew its traces (plotly/anywidget first render)")
    if path is not None:
        widget.screenshot(path=str(path))
    return widget.screenshot(mask=[widget.locator(_CONTROLS)])


def _stop_kernels(api) -> None:
    try:
        for session in api("/api/sessions")[1] or []:
            api(f"/api/sessions/{session['id']}", method="DELETE")
    except OSError:
        pass


def _record(name: str, timer: Timer) -> None:
    TIMINGS[name] = timer.total()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "browser_timings.json").write_text(json.dumps(TIMINGS, indent=2) + "\n")
    (ARTIFACTS / "browser_notes.txt").write_text("".join(n + "\n" for n in NOTES))


def test_expectation_table_is_well_formed():
    problems = [p for name, row in EXPECTATIONS.items() for p in validate(name, row)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[notebook_id(p) for p in NOTEBOOKS])
def test_lab_runs_and_reacts_in_jupyterlab(path, browser, sync_api, lab_server):
    row = EXPECTATIONS.get(path.name)
    if row is None:
        pytest.fail(f"{path.name} has no row in tests/labs/lab_expectations.py: add one saying which widgets "
                    f"must render (selectors with minimum counts), which control to move and what must change "
                    f"(see the example at the top of that file)")
    assert not validate(path.name, row), validate(path.name, row)
    base, token, api = lab_server
    nb = nbformat.read(path, as_version=4)
    n_cells, n_code = len(nb.cells), sum(c.cell_type == "code" for c in nb.cells)
    shots = ARTIFACTS / "screenshots" / path.stem
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    timer = Timer(path.name)
    # JupyterLab at a laptop's width; tall, so that a whole widget fits on screen when it is photographed
    page = browser.new_page(viewport={"width": 1400, "height": 2000})
    page_errors: list[str] = []
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    try:
        page.goto(f"{base}/lab/tree/{_served_path(path)}?token={token}&reset", wait_until="domcontentloaded")
        page.wait_for_function("(n) => document.querySelectorAll('.jp-Notebook .jp-Cell').length === n",
                               arg=n_cells, timeout=90_000)
        page.wait_for_function(
            "/Python 3.*\\| Idle/.test(document.querySelector('#jp-main-statusbar')?.innerText || '')",
            timeout=90_000)
        timer.lap("opened, kernel idle")

        # Run > Run All Cells, as a person would (Lumino menu items carry data-command).
        page.locator("#jp-menu-panel .lm-MenuBar-item", has_text="Run").first.click()
        page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()
        state = page.wait_for_function(_RUN_STATE_JS, arg=n_code, timeout=RUN_ALL_TIMEOUT_MS).json_value()
        timer.lap("run all")
        outputs = "\n".join(page.locator(".jp-Notebook .jp-OutputArea-output").all_inner_texts())
        page.screenshot(path=str(shots / "01_after_run_all.png"))
        assert state == "done" and "Traceback" not in outputs, (
            f"{path.name}: a cell raised during Run All:\n{outputs[-4000:]}")
        assert "FAIL exercise" not in outputs, f"{path.name}: a check failed in solutions mode:\n{outputs[-3000:]}"
        for bad in ("Error displaying widget", "Click to show javascript error"):
            assert bad not in outputs, f"{path.name}: {bad!r} in the outputs (a widget frontend is missing)"
        for text in row.get("texts", []):
            assert text in outputs, f"{path.name}: {text!r} not in any output"

        tofu = page.evaluate(_TOFU_JS)
        assert not tofu["tofu"], (f"{path.name}: {len(tofu['tofu'])} of {tofu['checked']} CJK characters render as "
                                  f"empty boxes: {''.join(tofu['tofu'][:20])}; install a CJK font (Debian: "
                                  f"fonts-noto-cjk; tools/ensure_system_packages.sh test does)")

        for selector, minimum in row["selectors"].items():
            try:
                page.wait_for_function(_COUNT_AT_LEAST_JS, arg=[selector, minimum], timeout=30_000)
            except sync_api.TimeoutError:
                found = page.locator(selector).count()
                pytest.fail(f"{path.name}: expected at least {minimum} of {selector!r}, found {found}")
        timer.lap("widgets rendered")

        # The visual moment: photographed, a control inside it moved, photographed again.
        moment_spec = widget_spec(row["moment"])
        moment = _widget(page, moment_spec)
        assert moment.count(), (f"{path.name}: the visual moment {moment_spec} is not on the page (lab_expectations.py "
                                f"'moment': the widget's CSS class, e.g. '.aisys-pass-stepper', and its index)")
        before_png = _photograph(moment, shots / "02_moment_before.png")
        legibility = _legibility_problems(path.name, f"the visual moment {moment_spec['widget']}", moment)
        changed = row.get("changed", "")
        changed = [changed] if isinstance(changed, str) else list(changed)
        handle = moment.element_handle()
        before = {sel: page.evaluate(_HTML_IN_JS, [handle, sel]) for sel in changed}
        for sel, html in before.items():
            assert html, f"{path.name}: nothing matches {sel!r} (listed under 'changed') inside the moment"
        action = _move_control(page, moment, row["control"])
        for sel in changed:
            try:
                page.wait_for_function(f"([el, old]) => ({_HTML_IN_JS})([el, {json.dumps(sel)}]) !== old",
                                       arg=[handle, before[sel]], timeout=20_000)
            except sync_api.TimeoutError:
                pytest.fail(f"{path.name}: {action} did not change {sel or 'the moment'!r}")
        page.wait_for_timeout(300)                     # let the browser paint what the kernel sent
        timer.lap(f"control moved ({action}), view changed")
        after_png = _photograph(moment, shots / "03_moment_after.png")
        assert after_png != before_png, (f"{path.name}: {action} changed the HTML of the visual moment but not one "
                                         f"pixel of it outside its controls: the change happens off screen")
        legibility += _legibility_problems(path.name, f"the visual moment {moment_spec['widget']} after {action}",
                                           moment)
        for k, extra in enumerate(row.get("shots", [])):
            spec = widget_spec(extra)
            widget = _widget(page, spec)
            assert widget.count(), f"{path.name}: the widget {spec} listed under 'shots' is not on the page"
            if not _show(widget):
                NOTES.append(f"{path.name} {spec}: a plotly figure in this widget never drew its traces")
            widget.screenshot(path=str(shots / f"{5 + k:02d}_{spec['widget'].lstrip('.')}.png"))
            legibility += _legibility_problems(path.name, spec["widget"], widget)
        timer.lap("screenshots")
        page.screenshot(path=str(shots / "04_page.png"))
        assert not legibility, "\n".join(legibility)
        assert not page_errors, f"{path.name}: JavaScript errors in the page: {page_errors}"
    finally:
        page.close()
        _stop_kernels(api)
        _record(path.name, timer)
