"""A real browser against `streamlit run`: upload a demo clip, see both result columns and the plot.

Uses Debian's Chromium (`/usr/bin/chromium`, installed by `make test`) through Playwright's
Python API; no browser is downloaded. Saves a screenshot under test-output/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("VIDSIM_CHROMIUM", "/usr/bin/chromium")
OUTPUT = ROOT / "test-output"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(project, built):
    port = _free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    shutil.copytree(ROOT / ".streamlit", project / ".streamlit", dirs_exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app" / "main.py"),
         "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"streamlit did not start:\n{proc.stdout.read().decode()}")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=20)


def test_upload_shows_side_by_side_results_and_latent_plot(server, project):
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium"
    query = next((project / "data/demo/queries").glob("*generated-track-01*.mp4"))
    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])
        # tall enough for the whole page: Streamlit scrolls inside its own container
        page = browser.new_page(viewport={"width": 1500, "height": 2400})
        try:
            page.goto(server, wait_until="domcontentloaded")
            expect(page.get_by_text("Find similar clips")).to_be_visible(timeout=60_000)
            page.locator("input[type=file]").set_input_files(str(query))
            for title in ("Audio only", "Audio-visual", "Visual only"):
                expect(page.get_by_role("heading", name=title)).to_be_visible(timeout=120_000)
            expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=60_000)
            page.wait_for_timeout(1500)  # let the images and the plot finish drawing
            text = page.locator("section.main, [data-testid='stMain']").first.inner_text()
            assert f"Query: {query.name}" in text
            assert text.count("probability ") >= 15  # 3 modalities x k = 5
            # the query is an unseen excerpt of track 01: audio-only search finds track 01 first
            audio_col = page.locator("[data-testid='stColumn']").filter(
                has=page.get_by_role("heading", name="Audio only")).first
            assert "1. generated-track-01" in audio_col.inner_text()
            # the plot holds the query star among the library points
            assert page.locator(".js-plotly-plot .legendtext", has_text="query").count() >= 1
            page.screenshot(path=str(OUTPUT / "search.png"), full_page=True)
            plot = page.locator("[data-testid='stPlotlyChart']").first
            plot.scroll_into_view_if_needed()
            plot.screenshot(path=str(OUTPUT / "latent.png"))  # the first latent plot, legend included
        finally:
            browser.close()


def test_library_page_is_a_gallery_of_thumbnails_with_a_search_box(server, project):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1500, "height": 2400})
        try:
            page.goto(server + "/library", wait_until="domcontentloaded")
            expect(page.get_by_role("heading", name="Library")).to_be_visible(timeout=60_000)
            images = page.locator("[data-testid='stMain'] img")
            expect(images.first).to_be_visible(timeout=60_000)
            page.wait_for_timeout(1500)
            widths = images.evaluate_all("els => els.map(e => e.naturalWidth)")
            assert len(widths) >= 12 and min(widths) >= 160, widths  # every card's thumbnail drew
            page.screenshot(path=str(OUTPUT / "library.png"), full_page=True)
            page.get_by_placeholder("part of a file name").fill("silent")
            page.keyboard.press("Enter")
            expect(page.get_by_text("clips 1-1 of 1 (filtered from")).to_be_visible(timeout=30_000)
            assert "missing audio" in page.locator("[data-testid='stMain']").inner_text()
        finally:
            browser.close()
