"""A real browser (Debian chromium driven by Playwright, headless) against the app on loopback:
tick a genre and generate, drop a poster into Classify and see scores (and its principal masks), run a transfer and
see the output, dream of a genre and see what the classifier makes of it.
Each test saves a screenshot of its tab on failure (to $POSTER_STUDIO_TEST_ARTIFACTS or <tmp>/poster_studio_artifacts).
"""
from __future__ import annotations

import base64
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import CONTENT_DIR, DATA_DIR, checkpoint_missing

CHROMIUM = os.environ.get("POSTER_STUDIO_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 120_000

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"chromium not installed at {CHROMIUM} "
                                 "(apt-get install -y chromium)")]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, app_server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(app_server.url, wait_until="domcontentloaded")
    pg.get_by_role("tab", name="Generate").wait_for()
    yield pg
    context.close()


@contextmanager
def screenshot_on_failure(page, artifacts: Path, name: str):
    try:
        yield
    except BaseException:
        path = artifacts / f"browser-{name}-failure.png"
        try:
            page.screenshot(path=str(path), full_page=True)
            print(f"screenshot saved to {path}")
        except Exception as exc:  # the page itself may be gone
            print(f"could not save a screenshot: {exc}")
        raise


def _poster_file(tmp_path: Path) -> Path:
    if (DATA_DIR / "images").is_dir():
        for p in sorted((DATA_DIR / "images").glob("val_*.jpg"))[:1]:
            return p
    rng = np.random.default_rng(1)
    path = tmp_path / "poster.png"
    Image.fromarray((rng.random((300, 200, 3)) * 255).astype(np.uint8)).save(path)
    return path


def drop_file(page, selector: str, path: Path, mime: str) -> None:
    """Drag-and-drop a file onto an element, as a user dropping it from the desktop (DataTransfer + drop event)."""
    data = base64.b64encode(path.read_bytes()).decode()
    handle = page.evaluate_handle(
        """([b64, name, mime]) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, {type: mime}));
            return dt;
        }""", [data, path.name, mime])
    target = page.locator(selector)
    target.dispatch_event("dragenter", {"dataTransfer": handle})
    target.dispatch_event("dragover", {"dataTransfer": handle})
    target.dispatch_event("drop", {"dataTransfer": handle})


def test_generate_tab_fills_gallery(page, artifacts):
    reason = checkpoint_missing("generator")
    if reason:
        pytest.skip(reason)
    with screenshot_on_failure(page, artifacts, "generate"):
        page.get_by_role("tab", name="Generate").click()
        page.locator("#gen-genres").get_by_label("Horror & Thriller").check()
        page.locator("#gen-btn").click()
        page.wait_for_function(
            "document.querySelectorAll('#gen-gallery img').length >= 8", timeout=TIMEOUT_MS)
        assert page.locator("#gen-gallery img").count() >= 8
        assert page.locator(".toast-body.error").count() == 0


def test_classify_tab_shows_scores_for_dropped_poster(page, artifacts, tmp_path):
    reason = checkpoint_missing("classifier")
    if reason:
        pytest.skip(reason)
    with screenshot_on_failure(page, artifacts, "classify"):
        page.get_by_role("tab", name="Classify").click()
        poster = _poster_file(tmp_path)
        drop_file(page, "#clf-image button.upload-container", poster,
                  "image/jpeg" if poster.suffix == ".jpg" else "image/png")
        label = page.locator("#clf-label")
        # gr.Label lists every genre with a percentage once the scores arrive
        page.wait_for_function(
            "(() => { const t = document.querySelector('#clf-label')?.innerText || '';"
            " return t.includes('Romance') && t.includes('Documentary') && t.includes('%'); })()",
            timeout=TIMEOUT_MS)
        text = label.inner_text()
        for name in ("Action & Adventure", "Animation", "Comedy", "Documentary", "Drama", "Horror & Thriller",
                     "Romance"):
            assert name in text
        # another heatmap genre: the summary says whose evidence is shown now
        before = page.get_by_text("evidence for ").inner_text()
        other = "Documentary" if "evidence for Documentary" not in before else "Comedy"
        page.get_by_label("Heatmap for genre").click()
        page.get_by_role("option", name=other, exact=True).click()
        page.get_by_text(f"evidence for {other}").wait_for(timeout=TIMEOUT_MS)
        page.get_by_text("Principal masks (a second view beside Grad-CAM)").click()
        page.locator("#clf-masks-btn").click()
        page.wait_for_function("document.querySelectorAll('#clf-masks img').length >= 3", timeout=TIMEOUT_MS)
        page.get_by_text("the picture seen only there").first.wait_for(timeout=TIMEOUT_MS)
        assert page.locator(".toast-body.error").count() == 0


def test_dream_tab_dreams_a_genre(page, artifacts):
    reason = checkpoint_missing("classifier")
    if reason:
        pytest.skip(reason)
    with screenshot_on_failure(page, artifacts, "dream"):
        page.get_by_role("tab", name="Dream").click()
        size = page.locator("#dream-size input")
        size.fill("128x192")
        size.press("Enter")
        steps = page.locator("#dream-steps input[type=number]")
        steps.fill("20")
        steps.press("Tab")
        page.locator("#dream-genres").get_by_label("Animation").check()
        page.locator("#dream-btn").click()
        page.wait_for_selector("#dream-out img", timeout=TIMEOUT_MS)
        # the classifier's view of the finished dream (not the progress bar's "Dreaming - 40%")
        page.wait_for_function("(document.querySelector('#dream-label')?.innerText || '').includes('Animation')",
                               timeout=TIMEOUT_MS)
        assert page.locator(".toast-body.error").count() == 0


def test_transfer_tab_shows_output(page, artifacts, tmp_path):
    reason = checkpoint_missing("transfer")
    if reason:
        pytest.skip(reason)
    with screenshot_on_failure(page, artifacts, "transfer"):
        page.get_by_role("tab", name="Genre transfer").click()
        content = CONTENT_DIR / "chelsea.png" if (CONTENT_DIR / "chelsea.png").is_file() else _poster_file(tmp_path)
        page.locator("#tr-content input[type=file]").set_input_files(str(content))
        page.wait_for_selector("#tr-content img", timeout=TIMEOUT_MS)
        page.locator("#tr-btn").click()
        page.wait_for_selector("#tr-out img", timeout=TIMEOUT_MS)
        assert page.locator("#tr-out img").count() >= 1
