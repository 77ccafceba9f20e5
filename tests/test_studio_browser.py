"""`gen studio` in a real browser: Debian's chromium driven by Playwright (executable_path; no
browser is ever downloaded). The real server starts through the CLI; the page picks the digits
run and class 7, samples 16 images, plays a MIDI sample, downloads a level, and saves
screenshots (under the test's temp folder, or GEN_STUDIO_SHOTS when set). Skips, saying why,
where chromium or Playwright cannot be had."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = next((p for p in (os.environ.get("GEN_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"))
                 if p), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(studio_runs, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("studio-log") / "server.log"
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gencore", "studio", "--runs-dir", str(studio_runs),
                                 "--port", str(port), "--no-open", "--device", "cpu"], stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=studio_runs.parent)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                assert reply.status == 200
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"gen studio did not serve {url}: {log.read_text()}")
            time.sleep(0.3)
    yield url, log
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def page(server, tmp_path_factory):
    if CHROMIUM is None:
        print("SKIP REASON: no chromium on PATH (apt-get install -y chromium)", file=sys.stderr)
        pytest.skip("no chromium on PATH (Debian: apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
        tab = context.new_page()
        tab.set_default_timeout(120_000)
        tab.goto(server[0])
        yield tab
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("GEN_STUDIO_SHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_digits_class_7_gives_16_images(page, shots):
    page.click("#runs button[data-run=digits]")
    page.wait_for_selector("#card h2:has-text('digits')")
    page.select_option("#class-select", "7")
    page.click("#sample-button")
    page.wait_for_function("document.querySelectorAll('#grid .item img').length === 16")
    assert page.locator("#grid .item .label span").first.inner_text() == "7"
    widths = page.eval_on_selector_all("#grid .item img", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(set(widths)) == 1 and widths[0] >= 8  # the domain's own preview of an 8x8 digit
    page.screenshot(path=str(shots / "studio-digits.png"), full_page=True)


def test_a_midi_sample_plays_with_a_moving_playhead(page, shots):
    page.click("#runs button[data-run=midi]")
    page.wait_for_selector("#card h2:has-text('midi')")
    page.fill("#n", "4")
    page.click("#sample-button")
    page.wait_for_function("document.querySelectorAll('#grid .item').length === 4")
    page.click("#grid .item >> nth=0")
    page.wait_for_selector("#player:not(.hidden)")
    page.click("#play")
    page.wait_for_selector("#viewer[data-playing]")
    page.wait_for_function("parseFloat(document.querySelector('#playhead').style.left) > 5")
    assert page.eval_on_selector("#wav", "a => a.src").endswith(".wav?inline=1")
    page.screenshot(path=str(shots / "studio-midi.png"))
    page.click("#play")
    page.click("#keep")
    page.keyboard.press("Escape")


def test_a_level_downloads_as_text_and_shows_the_checkers_path(page, shots, tmp_path):
    page.click("#runs button[data-run=levels]")
    page.wait_for_selector("#card h2:has-text('levels')")
    page.fill("#n", "6")
    page.click("#sample-button")
    page.wait_for_function("document.querySelectorAll('#grid .item').length === 6")
    page.click("#grid .item >> nth=0")
    link = page.locator("#viewer-files a[download$='.txt']")
    link.wait_for()
    with page.expect_download() as info:
        link.click()
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    rows = target.read_text().splitlines()
    assert len(rows) >= 10 and len({len(r) for r in rows}) == 1
    assert "checker" in page.inner_text("#viewer-notes")
    page.screenshot(path=str(shots / "studio-level.png"))
    page.click("#keep")
    page.keyboard.press("Escape")
    with page.expect_download() as info:
        page.click("#picks-zip")
    assert info.value.suggested_filename == "gen-picks.zip"


def test_the_server_log_shows_no_traceback(page, server):
    page.goto(server[0] + "api/runs/nope")
    assert "Traceback" not in server[1].read_text()
