"""The study report at 1,000 classes: time to write it, and to render it in headless Chromium.

Workload (issue 11): a synthetic :class:`StudyResult` of 1,000 classes and three strengths (20
significant drops, 30 gains), built by the report tests' factory
(``tests/report/conftest.py::make_fake_result``), against the same at 10 classes in the same run.
Rendering is timed as one ``chromium --headless --dump-dom page#selftest`` call: browser start,
parsing, decoding every figure, then the page's self-test, which sorts the per-class table
twice by Δ (so the sort of 1,000 rows is inside the time). Best of ``--repeats``.

Usage: ``python bench/report_render.py [--repeats 3] [--classes 1000]``
"""

from __future__ import annotations

import argparse
import html
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "report"))
from conftest import make_fake_result

from classgap.report import write_report


def render_seconds(chromium: str, page: Path, profile: Path) -> tuple[float, dict]:
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", "--no-default-browser-check", f"--user-data-dir={profile}",
           "--dump-dom", page.resolve().as_uri() + "#selftest"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    seconds = time.perf_counter() - start
    match = re.search(r'<pre id="selftest">(.*?)</pre>', done.stdout, re.S)
    if not match:
        raise SystemExit("the page's self-test did not run")
    return seconds, json.loads(html.unescape(match.group(1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--classes", type=int, default=1000)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs Chromium: apt-get install chromium")
    version = subprocess.run([chromium, "--version"], capture_output=True, text=True).stdout
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {version.strip()}")
    with tempfile.TemporaryDirectory() as tmp:
        for n_classes in (10, args.classes):
            result = make_fake_result(n_classes=n_classes, strengths=(0.0, 0.1, 0.3),
                                      n_drops=min(20, n_classes // 5),
                                      n_gains=min(30, n_classes // 5))
            start = time.perf_counter()
            page = write_report(result, Path(tmp) / f"k{n_classes}")
            written = time.perf_counter() - start
            times = []
            for i in range(args.repeats):
                seconds, state = render_seconds(chromium, page, Path(tmp) / f"profile{i}")
                times.append(seconds)
            assert state["rows"] == n_classes and state["images_loaded"] == 4, state
            size = page.stat().st_size / 1e6
            print(f"{n_classes:>6,} classes: write_report {written:6.2f} s, page {size:5.2f} MB, "
                  f"Chromium load + self-test {min(times):5.2f} s (best of {args.repeats})")


if __name__ == "__main__":
    main()
