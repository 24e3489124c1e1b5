"""Browser tier: the real app served by uvicorn on loopback, driven by Debian's headless Chromium."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from bench.processes import free_port
from pipeline.entrypoints.api import create_app
from pipeline.web.render import STATIC
from tests.integration.conftest import Pipeline, start_pipeline

CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def serve(tmp_path: Path, overrides: dict[str, Any] | None = None) -> Iterator[tuple[Pipeline, str]]:
    """The pipeline (with config ``overrides``) and its web app served by uvicorn on a free loopback port."""
    pipeline = start_pipeline(tmp_path, overrides)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(pipeline.services), host="127.0.0.1", port=port,
                                           log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the web app did not start on loopback within 15 s")
        time.sleep(0.05)
    try:
        yield pipeline, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        pipeline.services.store.dispose()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Pipeline, str]]:
    if not (STATIC / "app.css").exists():
        raise RuntimeError("the web app's assets are not built: run `make assets` (npm ci and the Sass build)")
    with serve(tmp_path) as pair:
        yield pair


# One Chromium per test module, not per session: while Playwright's sync API is started, the main thread has a
# running asyncio loop, and every later test calling asyncio.run() (the worker's unit tests) would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        raise RuntimeError("Chromium is not installed: `make test` installs Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"  # gitignored; kept after the run for people to look at


def check_accessible(page: Page) -> None:
    """axe-core (from npm) on the page as it is: any serious or critical violation fails the test."""
    if not AXE.exists():
        raise RuntimeError("axe-core is missing: `make assets` installs it from npm")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    results = page.evaluate("axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', "
                           "'wcag22aa', 'best-practice']})")
    bad = [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
           for v in results["violations"] if v["impact"] in ("serious", "critical")]
    assert bad == [], f"{page.url}: " + "; ".join(bad)


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
