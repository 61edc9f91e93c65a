"""End to end: `streamlit run app.py` on 127.0.0.1, opened in headless Chromium through Playwright.

Needs Debian's chromium at /usr/bin/chromium (``apt-get install chromium``). Outside CI the test is
skipped when it is missing; in CI (``CI=true``) a missing browser is a failure, not a skip.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT_S = 120
RUN_TIMEOUT_MS = 180_000

pytestmark = pytest.mark.browser


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    pytest.fail(f"streamlit did not become healthy in {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def need_chromium() -> None:
    if not CHROMIUM.exists():
        if in_ci():
            pytest.fail(f"{CHROMIUM} is missing in CI: .ci/run installs it with apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); the browser test needs it")


@contextlib.contextmanager
def serve(name: str = "streamlit-server"):
    """``streamlit run app.py`` on a free port; yields its URL once healthy, stops it afterwards."""
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / f"{name}.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless=true",
        "--server.address=127.0.0.1",
        f"--server.port={port}",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
    ]
    with log.open("w") as out:
        server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, server, log)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)


@pytest.fixture(scope="module")
def server_url():
    need_chromium()
    with serve() as url:
        yield url


def test_home_page_renders_in_chromium(server_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1700})
            page.goto(server_url, timeout=RUN_TIMEOUT_MS)
            page.wait_for_selector('[data-testid="stAppViewContainer"]', timeout=RUN_TIMEOUT_MS)
            # The home page classifies the default sample: wait until its table is drawn and the
            # "running" status widget is gone, so the screenshot shows the finished page.
            page.wait_for_selector('[data-testid="stDataFrame"]', timeout=RUN_TIMEOUT_MS)
            page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=RUN_TIMEOUT_MS)
            page.wait_for_timeout(1000)  # let plotly/dataframe canvases paint before the screenshot
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=True)

            assert page.locator("h1", has_text="Glimpse").count() >= 1
            sidebar = page.locator('[data-testid="stSidebar"]')
            assert sidebar.count() == 1
            assert sidebar.get_by_text("Device").count() >= 1
            # the classifier picker (a combobox: its value is the input's, not text) names the embedded model
            assert "efficientnet-lite0" in [box.input_value() for box in sidebar.locator("input").all()]
            assert page.get_by_text("Cross-attention").count() >= 1
            assert page.locator('[data-testid="stException"]').count() == 0
            assert page.locator('[data-testid="stAlertContentError"]').count() == 0
        finally:
            browser.close()


def open_settled(browser, url: str, heading: str):
    """A new page (a new session) at ``url``, once its script has finished."""
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.goto(url, timeout=RUN_TIMEOUT_MS)
    page.wait_for_selector(f'h1:has-text("{heading}")', timeout=RUN_TIMEOUT_MS)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=RUN_TIMEOUT_MS)
    return page


def test_saliency_picker_cancel_and_toolbar_in_chromium(server_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = open_settled(browser, f"{server_url}/saliency", "Saliency")
            # end users get no Deploy button (client.toolbarMode = "viewer")
            assert page.get_by_role("button", name="Deploy").count() == 0
            # typing a name and pressing Enter adds that one method, not every fuzzy match of it
            picker = page.locator('[data-testid="stMultiSelect"]').first
            picker.locator("input").first.click()
            page.keyboard.type("SmoothGrad")
            page.keyboard.press("Enter")
            page.wait_for_selector('[data-testid="stMultiSelect"] [aria-label^="SmoothGrad (gradient)"]')
            page.wait_for_timeout(1000)
            tags = [t.get_attribute("aria-label") for t in picker.locator("[data-tag]").all()]
            defaults = ["Gradient (gradient)", "Input × Gradient (gradient)", "Grad-CAM (cam)", "Grad-CAM++ (cam)"]
            assert tags[:4] == defaults and len(tags) == 5 and tags[4].startswith("SmoothGrad (gradient)"), tags

            # a slow method can be cancelled; the model is free again afterwards
            page = open_settled(browser, f"{server_url}/saliency?methods=lime", "Saliency")
            page.get_by_role("button", name="Compute").click()
            page.get_by_role("button", name="Cancel").click(timeout=RUN_TIMEOUT_MS)
            page.wait_for_selector("text=Computation cancelled", timeout=60_000)
            assert page.get_by_text("maps computed in").count() == 0
            page = open_settled(browser, f"{server_url}/saliency?methods=gradient", "Saliency")
            page.get_by_role("button", name="Compute").click()
            page.wait_for_selector("text=maps computed in", timeout=RUN_TIMEOUT_MS)
            assert page.locator('[data-testid="stException"]').count() == 0
        finally:
            browser.close()


def test_a_deep_link_as_a_fresh_servers_first_visit_keeps_the_apps_navigation():
    """With the pages in a folder named pages/, Streamlit started such a session in its legacy multipage mode:
    the sidebar listed file names (app, attention, ...) and lost the device and classifier pickers."""
    from playwright.sync_api import sync_playwright

    need_chromium()
    with serve("streamlit-deep-link") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = open_settled(browser, f"{url}/saliency?methods=gradcam", "Saliency")
            page.wait_for_timeout(1000)
            sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
            assert "Device" in sidebar and "Cross-attention" in sidebar and "Visual complexity" in sidebar, sidebar
            assert "\napp\n" not in f"\n{sidebar}\n"
        finally:
            browser.close()
