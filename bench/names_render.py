"""Names as text: what rendering every table cell as rich Text and every name through
``classgap._format.literal`` costs (issue 20, item 9).

Times the terminal tables of ``audit --all`` and ``compare --all`` (rendered to text the way
``--out FILE --format table`` does), and ``write_report`` of a study, at many classes whose names
mix plain and hostile ones (``[background]``, ``c[/b]``, ``a\\nb``, ``$x$``, 80 characters). Run
it against another checkout with ``PYTHONPATH=OTHER/src`` to compare (the old code crashes on
``[/]``, so ``--plain`` gives every class a plain name: the comparison then times the same
work). Best of ``--repeats``.

Usage: ``python bench/names_render.py [--classes 1000 10000] [--repeats 3] [--plain]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "report"))
from conftest import make_fake_result

import classgap
from classgap.audit.compare import compare_predictions
from classgap.audit.frame import audit
from classgap.cli.render import audit_tables, comparison_tables, render_tables
from classgap.report import write_report

HOSTILE = ["[background]", "b [x]", "[/]", "c[/b]", "_background", "$x$", "a\nb",
           "<img src=x onerror=alert(1)>", "</script><script>alert(1)</script>", "L" * 80]


def names(k: int, plain: bool) -> list[str]:
    return [f"class {i}" if plain or i % 10 else f"{HOSTILE[(i // 10) % len(HOSTILE)]} {i}"
            for i in range(k)]


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--plain", action="store_true", help="plain names only")
    args = parser.parse_args()
    print(f"classgap from {Path(classgap.__file__).parent}")
    rng = np.random.default_rng(0)
    for k in args.classes:
        class_names = names(k, args.plain)
        y = np.repeat(np.arange(k), 10)
        a = np.where(rng.random(y.size) < 0.8, y, (y + 1) % k)
        b = np.where(rng.random(y.size) < 0.8, y, (y + 1) % k)
        audited = audit(y, a, class_names=class_names, n_boot=100, random_state=0)
        compared = compare_predictions(y, [a], [b], k, class_names=class_names, random_state=0)
        t_audit = best(lambda r=audited: render_tables(audit_tables(r, show_all=True)),
                       args.repeats)
        t_comp = best(lambda r=compared: render_tables(comparison_tables(r, show_all=True)),
                      args.repeats)
        print(f"{k:>6} classes: audit table {t_audit:.3f} s, compare table {t_comp:.3f} s")
    result = make_fake_result(n_classes=1000, strengths=(0.0, 0.1, 0.3), n_drops=20,
                              n_gains=30, names=names(1000, args.plain))
    with tempfile.TemporaryDirectory() as tmp:
        t_report = best(lambda: write_report(result, tmp), args.repeats)
    print(f"  1000 classes: write_report {t_report:.3f} s")


if __name__ == "__main__":
    main()
