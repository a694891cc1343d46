"""The web page in a real headless Chromium: it loads the model card, an image dropped in gives an
overlay and class areas, and the (fake) camera streams live overlays with their FPS."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.serve.conftest import png_bytes, street

CHROMIUM = os.environ.get("FASTERSEG_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
# Flags for a closed network (no background connections) and a root user, plus a fake camera.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
    if CHROMIUM is None:
        pytest.skip("no Chromium here (Debian: apt-get install chromium; or set FASTERSEG_CHROMIUM)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def test_an_image_dropped_in_gives_an_overlay_with_class_areas(browser, server, tmp_path):
    picture = tmp_path / "street.png"
    picture.write_bytes(png_bytes(street(240, 320)))
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/")
    page.wait_for_selector("#card dt")  # the model card arrived
    assert "11 classes" in page.text_content("#model-line")
    assert page.locator("#legend tbody tr").count() == 11
    page.set_input_files("#file", str(picture))
    page.wait_for_selector('#overlay[data-ready="1"]', timeout=60_000)
    size = page.evaluate("() => [document.getElementById('overlay').naturalWidth, document.getElementById('overlay').naturalHeight]")
    assert size == [320, 240]
    areas = page.locator("#legend td.area").all_text_contents()
    assert areas and all(a.endswith("%") for a in areas)
    assert abs(sum(float(a.rstrip(" %")) for a in areas) - 100) < 1  # the shares of the whole picture
    assert "inference" in page.text_content("#status")
    page.screenshot(path=str(tmp_path / "page.png"))
    assert not errors


def test_the_camera_streams_live_overlays(browser, server):
    context = browser.new_context(permissions=["camera"])
    page = context.new_page()
    page.goto(server.url + "/")
    page.wait_for_selector("#card dt")
    page.click("#camera")
    page.wait_for_function("() => /[0-9.]+ FPS/.test(document.getElementById('fps').textContent)", timeout=60_000)
    assert page.evaluate("() => document.getElementById('live').width") > 0
    page.click("#stop")
    assert "camera off" in page.text_content("#status")
    context.close()
