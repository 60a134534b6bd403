"""The report in a real browser: headless Chromium loads it offline with no console message,
every figure decodes, one table row per class, hostile class names shown as text.

The page's own static script writes ``<pre id="selftest">{json}</pre>`` when the URL ends in
``#selftest``; ``chromium --dump-dom`` returns the DOM after scripts ran, so no WebDriver or
CDP client is needed. Chromium comes from the Debian package ``chromium``: installed here when
missing and running as root with apt, otherwise the tests skip.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from classgap.analysis.result import StudyResult
from classgap.report import write_report

Factory = Callable[..., StudyResult]
HOSTILE = "<script>alert(1)</script>"
# Chromium prints console messages (any level) to stderr as ``...:INFO:CONSOLE:<line>] "msg"``.
CONSOLE = re.compile(r":CONSOLE(?:\(\d+\)|:\d+)\]\s*(.*)")


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _apt_install(package: str) -> bool:
    def install() -> bool:
        return subprocess.run(
            ["apt-get", "install", "-y", "-qq", package],
            capture_output=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            timeout=900, check=False,
        ).returncode == 0

    if install():
        return True
    # The package lists may be stale on a fresh image: refresh once, then retry.
    subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=600, check=False)
    return install()


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a Chromium binary; installs the Debian package when root, else skips."""
    path = _find_chromium()
    if path:
        return path
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium not installed (apt-get install chromium) and not root to install")
    start = time.perf_counter()
    if not _apt_install("chromium") or not (path := _find_chromium()):
        pytest.skip("could not install the Debian package 'chromium'")
    print(f"installed chromium in {time.perf_counter() - start:.1f} s")
    return path


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def _dump_dom(chromium: str, page: Path, profile: Path) -> tuple[str, list[str]]:
    """Load ``page#selftest`` headless and offline; return the DOM and console messages."""
    cmd = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--no-default-browser-check", f"--user-data-dir={profile}",
        "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
        "--dump-dom", page.resolve().as_uri() + "#selftest",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [m.group(1) for m in map(CONSOLE.search, done.stderr.splitlines()) if m]
    return done.stdout, console


def _selftest(dom: str) -> dict:
    match = re.search(r'<pre id="selftest">(.*?)</pre>', dom, re.S)
    assert match, "the report's self-test did not run (script blocked or failed?)"
    # The JSON sits in a text node, so the DOM serialiser escaped it.
    return json.loads(html.unescape(match.group(1)))


def test_report_loads_cleanly_in_chromium(
    chromium: str, fake_result: Factory, tmp_path: Path
) -> None:
    result = fake_result(12, with_transfer=True, hostile=True)
    page = write_report(result, tmp_path / "out")
    dom, console = _dump_dom(chromium, page, tmp_path / "profile")

    assert console == [], f"console messages: {console}"
    state = _selftest(dom)
    assert state["images_total"] == 5  # 4 figures + transfer
    assert state["images_loaded"] == state["images_total"]
    assert state["rows"] == len(result.classes)
    assert state["scripts"] == 1  # ours only: no injected <script> element exists
    # The hostile names are the text of their cells, exactly as in the data.
    assert sorted(state["classes"]) == sorted(result.classes["class"])
    assert HOSTILE in state["classes"] and "&amp; co" in state["classes"]
    assert "<script>alert" not in dom
    # Clicking the Δ header twice sorted the rows by Δ, descending (the inline sort works).
    deltas = state["delta_sorted_desc"]
    assert len(deltas) == len(result.classes)
    assert deltas == sorted(deltas, reverse=True)


def test_console_errors_are_detected(chromium: str, tmp_path: Path) -> None:
    # Negative control: the stderr parsing above would pass vacuously if Chromium's log format
    # changed; a page that logs and throws must be caught.
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><body><script>console.error("boom"); nope();</script>')
    _, console = _dump_dom(chromium, page, tmp_path / "profile")
    assert any("boom" in m for m in console)
    assert any("nope is not defined" in m for m in console)


def test_a_thousand_class_report_loads_and_sorts(
    chromium: str, fake_result: Factory, tmp_path: Path
) -> None:
    # The scale of issue 11: every class a row, every figure decoded, the sort over 1,000 rows.
    # (Its render time is measured in bench/report_render.py, not here.)
    result = fake_result(1000, strengths=(0.0, 0.1, 0.3), n_drops=20, n_gains=30)
    page = write_report(result, tmp_path / "out")
    dom, console = _dump_dom(chromium, page, tmp_path / "profile")
    assert console == [], f"console messages: {console}"
    state = _selftest(dom)
    assert state["rows"] == 1000 and state["images_loaded"] == state["images_total"] == 4
    assert state["delta_sorted_desc"] == sorted(state["delta_sorted_desc"], reverse=True)
    assert 'class="scroll"' in dom
