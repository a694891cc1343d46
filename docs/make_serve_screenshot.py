"""docs/images/serve_page.png: the `fasterseg serve` page after a CamVid frame was dropped in.

Starts the server (built-in model, automatic deploy path) on a free 127.0.0.1 port, opens the page
in headless Chromium (Debian's package), picks a frame of ../shared/data/camvid (read in place)
and saves the page once the overlay is shown.

    python docs/make_serve_screenshot.py [--frame PATH] [--out docs/images/serve_page.png]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from serve_load import free_port, start_server  # noqa: E402

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> int:
    from playwright.sync_api import sync_playwright

    camvid = REPO.parent / "shared" / "data" / "camvid"
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frame", default=str(camvid / "val" / "0016E5_07959.png"))
    p.add_argument("--out", default=str(REPO / "docs" / "images" / "serve_page.png"))
    args = p.parse_args()
    port = free_port()
    server = start_server(port, ["--set", "warmup_size=[360,480]"])  # CamVid frames' size: compiled before the drop
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#card dt")
            page.set_input_files("#file", args.frame)
            page.wait_for_selector('#overlay[data-ready="1"]', timeout=120_000)
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(60)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
