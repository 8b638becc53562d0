"""Re-take the README screenshots (docs/generate.png, docs/classify.png, docs/transfer.png, docs/dream.png).

  python docs/screenshots.py [--url http://127.0.0.1:7860]   # starts the app on loopback unless --url is given

Drives headless Debian chromium through Playwright exactly as a user would: ticks genres and generates,
drops a poster into Classify (and opens its principal masks), runs a fast genre transfer on a photo, dreams of a
genre.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_browser import CHROMIUM, CHROMIUM_ARGS, drop_file  # noqa: E402

DATA = Path(os.environ.get("POSTER_STUDIO_DATA", ROOT.parent / "shared" / "data" / "posters"))
CONTENT = DATA.parent / "content"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, seconds: float = 120) -> None:
    t0 = time.time()
    while time.time() - t0 < seconds:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"app did not answer at {url}")


TABS = ("generate", "classify", "transfer", "dream")


def shoot(url: str, out: Path, tabs=TABS) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(180_000)
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Generate").wait_for()
        time.sleep(3)  # models load in the background

        if "generate" in tabs:
            _generate(page, out)
        if "classify" in tabs:
            _classify(page, out)
        if "transfer" in tabs:
            _transfer(page, out)
        if "dream" in tabs:
            _dream(page, out)
        browser.close()


def _generate(page, out: Path) -> None:
    page.get_by_role("tab", name="Generate").click()
    for g in ("Horror & Thriller",):
        page.locator("#gen-genres").get_by_label(g).check()
    page.locator("#gen-btn").click()
    page.wait_for_function("document.querySelectorAll('#gen-gallery img').length >= 8")
    time.sleep(1.5)
    page.screenshot(path=str(out / "generate.png"), full_page=True)


def _classify(page, out: Path) -> None:
    page.get_by_role("tab", name="Classify").click()
    poster = sorted((DATA / "images").glob("val_*.jpg"))[int(os.environ.get("SHOT_POSTER", 3))]
    drop_file(page, "#clf-image button.upload-container", poster, "image/jpeg")
    page.wait_for_function("(document.querySelector('#clf-label')?.innerText || '').includes('%')")
    time.sleep(4)  # heat maps and similar posters follow the scores
    page.get_by_text("Principal masks (a second view beside Grad-CAM)").click()
    page.locator("#clf-masks-btn").click()
    page.wait_for_function("document.querySelectorAll('#clf-masks img').length >= 3")
    time.sleep(1.5)
    page.screenshot(path=str(out / "classify.png"), full_page=True)


def _transfer(page, out: Path) -> None:
    page.get_by_role("tab", name="Genre transfer").click()
    page.locator("#tr-content input[type=file]").set_input_files(str(CONTENT / "chelsea.png"))
    page.wait_for_selector("#tr-content img")
    page.locator("#tr-btn").click()
    page.wait_for_function("(() => { const t = document.querySelector('#tr-notes')?.innerText || '';"
                           " return t.includes('Exemplar posters') && !t.includes('⏳'); })()")
    page.wait_for_selector("#tr-out img")
    time.sleep(2)
    page.screenshot(path=str(out / "transfer.png"), full_page=True)


def _dream(page, out: Path) -> None:
    page.get_by_role("tab", name="Dream").click()
    page.locator("#dream-btn").click()
    page.wait_for_function("(document.querySelector('#dream-label')?.innerText || '').includes('Horror')")
    time.sleep(1.5)
    page.screenshot(path=str(out / "dream.png"), full_page=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=None)
    ap.add_argument("--out", default=str(ROOT / "docs"))
    ap.add_argument("--tabs", nargs="+", default=list(TABS), choices=TABS)
    args = ap.parse_args()
    proc = None
    url = args.url
    if url is None:
        port = _free_port()
        env = dict(os.environ, GRADIO_SERVER_PORT=str(port), POSTER_STUDIO_DATA=str(DATA))
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env)
        url = f"http://127.0.0.1:{port}"
        _wait(url)
    try:
        shoot(url, Path(args.out), args.tabs)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"screenshots written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
