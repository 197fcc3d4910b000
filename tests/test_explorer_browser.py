"""The Raw-to-logit explorer in a real browser: the app started as a user starts it
(``python scripts/explorer.py --model ...``) on 127.0.0.1, driven by headless Chromium (Debian's
``chromium`` package) through Playwright. No browser is downloaded: Playwright only drives the
system Chromium given by ``executable_path``.

Skipped, with the reason, when Chromium or Playwright is missing, except under CI (``CI`` set),
where ``.ci/run`` installs both and a missing one is a failure.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import raw_isp

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("EXPLORER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VARIANTS = list(raw_isp.ISP_VARIANTS)

pytestmark = pytest.mark.browser


def _require_browser():
    problems = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the playwright package is not installed (pip install -e '.[test]')")
    if not Path(CHROMIUM).is_file():
        problems.append(f"{CHROMIUM} is missing (apt-get install chromium)")
    if problems:
        if os.environ.get("CI"):
            pytest.fail("the browser test must run in CI, but " + "; ".join(problems))
        pytest.skip("real-browser test: " + "; ".join(problems))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The explorer serving a tiny model from the training script; yields its URL."""
    _require_browser()
    from raw_isp.training.cli import main as train_main

    work = tmp_path_factory.mktemp("explorer_app")
    cache, model = str(work / "hf_cache"), str(work / "model")
    assert train_main("classification", [
        "--output_dir", model, "--cache_dir", cache, "--num_examples", "60", "--model_name_or_path", "vit-micro",
        "--max_train_steps", "2", "--per_device_train_batch_size", "8", "--max_eval_samples", "4"]) == 0
    port = _free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(work / "gradio"),
           "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONUNBUFFERED": "1"}
    log = open(work / "app.log", "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "explorer.py"), "--model", model,
                             "--cache_dir", cache, "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the explorer exited with {proc.returncode}:\n{(work / 'app.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the explorer did not answer on {url} within 120 s:\n"
                            f"{(work / 'app.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield {"url": url, "work": work, "log": work / "app.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_explorer_in_a_real_browser(app, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    raw = (np.random.default_rng(0).random((96, 128)) * 40000).astype(np.uint16)
    raw_isp.write_raw(tmp_path / "frame.tiff", raw)
    (tmp_path / "holiday.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    timings = {}

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.set_default_timeout(60_000)
            page.goto(app["url"])
            views = page.locator("#views img")
            message = page.locator("#message")

            # The first example is shown on load: 12 views, their predictions and the drift table.
            expect(page.locator("#frame-info")).to_contain_text("Raw-Microscopy test #0")
            expect(views).to_have_count(12)
            expect(page.locator("#drift-summary")).to_contain_text("Ground truth")

            # Pick an example by index.
            page.locator("#index input").fill("2")
            start = time.perf_counter()
            page.locator("#show-example").click()
            expect(page.locator("#frame-info")).to_contain_text("Raw-Microscopy test #2")
            expect(views).to_have_count(12)
            timings["example -> 12 views + predictions"] = time.perf_counter() - start
            captions = page.locator("#views .caption-label").all_inner_texts()
            assert [c.split(":")[0].split(" ")[0] for c in captions] == VARIANTS
            assert all("%" in c for c in captions)  # each view names its top class and probability
            predictions = page.locator("#predictions")
            expect(predictions).to_contain_text("top 1")
            for v in VARIANTS:
                expect(predictions).to_contain_text(v)
            drift = page.locator("#drift-table")
            expect(drift).to_contain_text("intensity 0.01")
            expect(drift.locator("[role=row]")).to_have_count(13)  # header + 12 variants
            expect(page.locator("#drift-summary")).to_contain_text("of 84 views")
            expect(page.locator("#param-caption")).to_contain_text("prediction:")
            expect(message).to_have_text("")

            # Move the intensity slider to step 3 (ratio 0.25): new, darker views.
            before = views.first.get_attribute("src")
            start = time.perf_counter()
            page.locator("#intensity input[type=range]").fill("3")
            expect(page.locator("#intensity-info")).to_contain_text("Intensity ratio 0.25")
            expect(views.first).not_to_have_attribute("src", before)
            timings["intensity slider -> 12 views"] = time.perf_counter() - start
            expect(views).to_have_count(12)
            expect(page.locator("#param-caption")).to_contain_text("at intensity 0.25")

            # A ParametrizedISP slider updates the live view.
            page.locator("#param-gamma input[type=range]").fill("3")
            expect(page.locator("#param-caption")).to_contain_text("gamma 3.00")

            # Upload a raw TIFF: developed like the examples.
            start = time.perf_counter()
            page.locator("#upload input[type=file]").set_input_files(str(tmp_path / "frame.tiff"))
            expect(page.locator("#frame-info")).to_contain_text("uploaded frame.tiff")
            expect(page.locator("#frame-info")).to_contain_text("96x128 uint16 RGGB mosaic")
            expect(views).to_have_count(12)
            timings["upload -> 12 views + predictions"] = time.perf_counter() - start
            expect(message).to_have_text("")

            # Upload a file that is not a raw frame: a clear message, the page keeps the last frame.
            page.locator("#upload button[aria-label=Clear]").click()
            page.locator("#upload input[type=file]").set_input_files(str(tmp_path / "holiday.png"))
            expect(message).to_contain_text("Error: holiday.png: not a TIFF or DNG file (a PNG image)")
            expect(page.locator("#frame-info")).to_contain_text("uploaded frame.tiff")
            expect(views).to_have_count(12)

            # A wrong model folder: a clear message too.
            # (inside the folders the explorer loads from: the one holding --model)
            wrong = app["work"] / "not_a_model"
            wrong.mkdir(exist_ok=True)
            page.locator("#model-dir textarea, #model-dir input").first.fill(str(wrong))
            page.locator("#load-model").click()
            expect(message).to_contain_text("not a model folder written by the training scripts")

            body = page.inner_text("body")
            assert "Traceback" not in body and 'File "' not in body
        finally:
            browser.close()
    print("browser-observed latency (s): " + ", ".join(f"{k}: {v:.2f}" for k, v in timings.items()))
    assert "unexpected error in a callback" not in app["log"].read_text()  # every error was an expected one
