"""The Grad-CAM explorer and the report index in a real browser (Debian's chromium + playwright).

Marked ``browser`` (and ``slow``): it runs the smoke pipeline's notebooks 01-04 into a temporary
run folder, starts JupyterLab headless on a loopback port with a token, opens notebook 05 there,
runs all cells and drives the explorer widget; then opens the report's ``index.html``.
Screenshots go to the test's tmp folder and are copied to ``$SEMCATHODE_BROWSER_SHOTS``
(default ``/tmp/semcathode-browser-shots``) for a person to look at.

Chromium is installed with apt when missing (CI runs as root); playwright comes from the ``test``
extra and is never asked to download a browser of its own.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(os.environ.get("SEMCATHODE_BROWSER_SHOTS", "/tmp/semcathode-browser-shots"))


def _ensure_chromium() -> None:
    if CHROMIUM.exists():
        return
    if shutil.which("apt-get") is None:
        pytest.skip("chromium is missing and apt-get is not available to install it")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env,
                       capture_output=True, timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, PermissionError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        pytest.skip(f"could not install Debian's chromium with apt-get: {exc} {detail[-300:]!r}")
    if not CHROMIUM.exists():
        pytest.skip("apt-get install chromium did not provide /usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    _ensure_chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (test extra) is not installed")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A smoke report with notebooks 01-04 (what notebook 05 needs) and its index.

    ``$SEMCATHODE_BROWSER_RUN`` names an existing smoke report to copy instead (saves the runs).
    """
    from semcathode.config._run import load_config
    from semcathode.pipeline._run import run_pipeline

    out = tmp_path_factory.mktemp("browser") / "smoke"
    if os.environ.get("SEMCATHODE_BROWSER_RUN"):
        shutil.copytree(os.environ["SEMCATHODE_BROWSER_RUN"], out)
        for p in out.glob("05_gradcam*"):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    else:
        run_pipeline(load_config("smoke"), out, notebooks=["01_data", "02_pretrain", "03_finetune", "04_ablation"],
                     log=lambda m: None, html=False)
    # a published report's manifest holds paths relative to the data root; resolve them on this
    # machine as a resumed run does (until sc.load_study resolves them itself)
    from semcathode.pipeline._run import _localise_manifest

    _localise_manifest(out, load_config("smoke"))
    return out


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("screenshots")
    yield d
    SHOTS.mkdir(parents=True, exist_ok=True)
    for f in d.glob("*.png"):
        shutil.copy2(f, SHOTS / f.name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(run_dir, tmp_path_factory):
    """JupyterLab serving ``run_dir`` on 127.0.0.1 with a token; yields its base URL and token."""
    import papermill as pm

    from semcathode.pipeline._notebooks import notebook_dir

    # notebook 05 with the run's parameters injected, unexecuted: the browser runs it
    pm.execute_notebook(str(notebook_dir() / "05_gradcam.ipynb"), str(run_dir / "05_gradcam.ipynb"),
                        parameters={"profile": "smoke", "config": "config.yaml", "data_dir": "", "out_dir": "."},
                        prepare_only=True, kernel_name="python3")
    port, token = _free_port(), secrets.token_hex(16)
    home = tmp_path_factory.mktemp("jupyter-home")
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "lab-settings"), JUPYTERLAB_WORKSPACES_DIR=str(home / "ws"),
               MPLBACKEND="Agg")
    log = open(home / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={run_dir}", "--ServerApp.port_retries=0",
         "--ServerApp.allow_root=True",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=run_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    t0 = time.time()
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.time() - t0 > 120:
                proc.kill()
                pytest.fail(f"JupyterLab did not start: {(home / 'jupyterlab.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield base, token
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


_IMG_DIGEST = """async (img) => {
  const buf = await (await fetch(img.src)).arrayBuffer();
  const d = await crypto.subtle.digest('SHA-256', buf);
  return Array.from(new Uint8Array(d)).map(b => b.toString(16).padStart(2, '0')).join('');
}"""


def _overlay(page):
    """The explorer's overlay image (the second image of the widget)."""
    return page.locator(".jp-OutputArea-output .widget-image").nth(1)


def _wait_change(page, before_src: str, timeout_s: float = 120) -> str:
    t0 = time.time()
    while time.time() - t0 < timeout_s:
        src = _overlay(page).get_attribute("src")
        if src and src != before_src:
            return src
        page.wait_for_timeout(500)
    raise AssertionError("the overlay image did not change")


def _all_cells_ran(page) -> bool:
    """Every rendered code cell has an execution count (JupyterLab leaves the prompts of cells
    scrolled far out of view empty, so those are not counted)."""
    prompts = [p.strip() for p in page.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()]
    prompts = [p for p in prompts if p]
    return bool(prompts) and all(p not in ("[ ]:", "[*]:") for p in prompts)


def test_explorer_in_jupyterlab(browser, jupyterlab, shots):
    base, token = jupyterlab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    try:
        _drive_explorer(page, base, token, shots)
    except BaseException:
        page.screenshot(path=str(shots / "99_failure.png"), full_page=True)
        raise
    finally:
        page.close()


def _drive_explorer(page, base: str, token: str, shots: Path) -> None:
    page.goto(f"{base}/lab/tree/05_gradcam.ipynb?token={token}")
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=180_000)
    if page.get_by_role("button", name="No").count():  # JupyterLab's "news?" toast
        page.get_by_role("button", name="No").first.click()
    page.screenshot(path=str(shots / "01_notebook_opened.png"))
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").filter(
        has_not_text="Restart").first.click()
    stderr = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    t0 = time.time()
    while not _all_cells_ran(page):
        errors = [t for t in stderr.all_inner_texts() if "Traceback" in t or "Error:" in t]
        if errors and page.get_by_text("Python 3 (ipykernel) | Idle").count():
            page.screenshot(path=str(shots / "99_cell_error.png"))
            pytest.fail(f"a cell of notebook 05 failed in JupyterLab: {errors[0][-1500:]}")
        assert time.time() - t0 < 600, "the notebook did not finish running"
        page.wait_for_timeout(1000)

    # the explorer widget: dropdowns and two images (micrograph and overlay)
    method = page.locator(".widget-dropdown").filter(has=page.locator("label", has_text="method")).locator("select")
    method.scroll_into_view_if_needed(timeout=120_000)
    overlay = _overlay(page)
    overlay.wait_for(timeout=120_000)
    page.wait_for_function(
        "() => { const i = document.querySelectorAll('.jp-OutputArea-output .widget-image');"
        " return i.length >= 2 && i[1].naturalWidth > 0 && i[1].naturalHeight > 0; }", timeout=120_000)
    overlay.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "02_explorer_rendered.png"))
    size = overlay.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert size[0] > 16 and size[1] > 16, size

    src0, digest0 = overlay.get_attribute("src"), overlay.evaluate(_IMG_DIGEST)
    options = method.evaluate("s => Array.from(s.options).map(o => o.value)")
    current = method.input_value()
    other = next(o for o in options if o != current)
    method.select_option(other)
    src1 = _wait_change(page, src0)
    digest1 = overlay.evaluate(_IMG_DIGEST)
    page.screenshot(path=str(shots / "03_method_changed.png"))
    assert src1 != src0 and digest1 != digest0, "another CAM method must give another overlay"

    target = page.locator(".widget-dropdown").filter(has=page.locator("label", has_text="explain")).locator("select")
    classes = target.evaluate("s => Array.from(s.options).map(o => o.value)")
    now = target.input_value()
    target.select_option(next(c for c in classes if c != now))
    src2 = _wait_change(page, src1)
    page.screenshot(path=str(shots / "04_class_changed.png"))
    assert src2 != src1 and overlay.evaluate(_IMG_DIGEST) != digest1, "another class must give another overlay"
    infos = " ".join(page.locator(".jp-OutputArea-output .widget-html").all_inner_texts())
    assert "CAM failed" not in infos, infos

    # the particle-outlines toggle draws the segmented outlines over both images
    toggle = page.locator(".widget-checkbox").filter(has_text="particle outlines").locator("input")
    toggle.scroll_into_view_if_needed()
    assert not toggle.is_disabled() and not toggle.is_checked()
    toggle.check()
    src3 = _wait_change(page, src2)
    page.screenshot(path=str(shots / "05_outlines_on.png"))
    assert src3 != src2, "the outlines must change the overlay"
    infos = " ".join(page.locator(".jp-OutputArea-output .widget-html").all_inner_texts())
    assert "outlines failed" not in infos, infos


def test_report_index_images_load(browser, run_dir, shots):
    from semcathode.report._index import write_index

    index = run_dir / "index.html"
    if not index.exists():
        write_index(run_dir)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(index.as_uri())
    page.wait_for_load_state("load")
    imgs = page.locator("img")
    n = imgs.count()
    assert n >= 3
    sizes = imgs.evaluate_all("els => els.map(i => [i.getAttribute('src'), i.complete, i.naturalWidth, i.naturalHeight])")
    broken = [s for s in sizes if not (s[1] and s[2] > 0 and s[3] > 0)]
    assert not broken, f"images that did not load: {broken}"
    page.screenshot(path=str(shots / "05_report_index.png"), full_page=False)
    page.close()
