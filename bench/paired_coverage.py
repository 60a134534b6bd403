"""Coverage and false-positive rate of the one-run-per-side interval of Δ (issue 20).

One run per side: of the n test pairs, b have A right and B wrong, c A wrong and B right, and
(b, c, n - b - c) is Multinomial(n; pb, pc, 1 - pb - pc). On new test images b, c and
m = b + c all vary. For each grid point the coverage of the true Δ = pc - pb is computed
*exactly*: every (b, c) whose probability exceeds 1e-13 in each margin is enumerated with its
multinomial probability (the mass left out is below 1e-12), and the interval is computed for
each. At the null (pb = pc) one minus the coverage is the false-positive rate of the test the
interval inverts (p < 0.05 exactly when it excludes 0).

Three procedures, all at 95%:

* ``score-cc``: classgap's ``mcnemar_interval`` (Tango's score interval, continuity
  correction 1/2; the shipped one);
* ``score``: the same without the continuity correction (Tango 1998 as published);
* ``conditional``: the Clopper-Pearson interval of c / m mapped to Δ with m held fixed (what
  classgap shipped before issue 20).

Usage: ``python bench/paired_coverage.py [--quick] [--procedures score-cc,score,conditional]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats
from scipy.special import gammaln

import classgap.audit.paired as paired
from classgap.audit.paired import mcnemar_interval

NS = (20, 30, 50, 100, 200, 500, 1000, 2000, 5000, 10_000)
RATES = (0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)
QUICK_NS = (20, 100, 1000)
QUICK_RATES = (0.0, 0.01, 0.05, 0.3)


def support(n: int, p: float, tail: float = 1e-13) -> np.ndarray:
    """The counts of a Binomial(n, p) margin that carry all but ``2 tail`` of its mass."""
    if p == 0:
        return np.zeros(1, dtype=np.int64)
    lo = int(stats.binom.ppf(tail, n, p))
    hi = int(stats.binom.isf(tail, n, p))
    return np.arange(max(lo - 1, 0), min(hi + 1, n) + 1)


def trinomial(n: int, pb: float, pc: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    b, c = (x.ravel() for x in np.meshgrid(support(n, pb), support(n, pc), indexing="ij"))
    keep = b + c <= n
    b, c = b[keep], c[keep]
    rest = n - b - c
    logp = gammaln(n + 1) - gammaln(b + 1) - gammaln(c + 1) - gammaln(rest + 1)
    for count, prob in ((b, pb), (c, pc), (rest, 1.0 - pb - pc)):
        with np.errstate(divide="ignore", invalid="ignore"):
            logp = logp + np.where(count > 0, count * np.log(prob) if prob > 0 else -np.inf, 0)
    return b, c, np.exp(logp)


def conditional(b: np.ndarray, c: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The interval classgap used before: Clopper-Pearson of c / m mapped to Δ, m fixed."""
    m = b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.where(c > 0, stats.beta.ppf(0.025, c, m - c + 1), 0.0)
        hi = np.where(c < m, stats.beta.ppf(0.975, c + 1, m - c), 1.0)
    return np.where(m > 0, m * (2 * lo - 1) / n, 0.0), np.where(m > 0, m * (2 * hi - 1) / n, 0.0)


def score(correction: float):
    def interval(b: np.ndarray, c: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        saved = paired.CONTINUITY
        paired.CONTINUITY = correction  # the module constant both the test and bounds read
        try:
            return mcnemar_interval(b, c, n)
        finally:
            paired.CONTINUITY = saved
    return interval


PROCEDURES = {"score-cc": score(0.5), "score": score(0.0), "conditional": conditional}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a 3 x 4 x 4 grid (seconds)")
    ap.add_argument("--procedures", default="score-cc,score,conditional")
    args = ap.parse_args()
    ns, rates = (QUICK_NS, QUICK_RATES) if args.quick else (NS, RATES)
    names = args.procedures.split(",")
    t0 = time.perf_counter()
    worst = {name: {"cov": (2.0, None), "fpr": (-1.0, None)} for name in names}
    below: dict[str, int] = dict.fromkeys(names, 0)
    by_n: dict[str, dict[int, float]] = {name: {} for name in names}
    points = 0
    for n in ns:
        for pb in rates:
            for pc in rates:
                if pb + pc > 1:
                    continue
                points += 1
                b, c, w = trinomial(n, pb, pc)
                for name in names:
                    low, high = PROCEDURES[name](b, c, n)
                    delta = pc - pb
                    cov = float(w[(low <= delta) & (delta <= high)].sum())
                    below[name] += cov < 0.94
                    by_n[name][n] = min(by_n[name].get(n, 2.0), cov)
                    if cov < worst[name]["cov"][0]:
                        worst[name]["cov"] = (cov, (n, pb, pc))
                    if pb == pc and 1 - cov > worst[name]["fpr"][0]:
                        worst[name]["fpr"] = (1 - cov, (n, pb))
    print(f"{points} grid points (n in {ns}, pb and pc in {rates}), exact enumeration, "
          f"{time.perf_counter() - t0:.0f} s")
    print("| procedure | min coverage (n, pb, pc) | points < 94% | max false-positive rate "
          "(n, pb = pc) |")
    print("|---|---|---:|---|")
    for name in names:
        (cov, at), (fpr, at0) = worst[name]["cov"], worst[name]["fpr"]
        print(f"| {name} | {cov:.4f} {at} | {below[name]} | {fpr:.4f} {at0} |")
    print("\nmin coverage over pb, pc at each n:")
    print("| n | " + " | ".join(names) + " |")
    print("|---:|" + "---:|" * len(names))
    for n in ns:
        print(f"| {n} | " + " | ".join(f"{by_n[name][n]:.4f}" for name in names) + " |")
    print("\nthe issue's rows (coverage of the true Δ):")
    print("| n | pb | pc | " + " | ".join(names) + " |")
    print("|---:|---:|---:|" + "---:|" * len(names))
    for n, pb, pc in [(100, 0.05, 0.0), (100, 0.05, 0.01), (1000, 0.02, 0.005),
                      (500, 0.10, 0.05), (1000, 0.05, 0.05)]:
        b, c, w = trinomial(n, pb, pc)
        covs = []
        for name in names:
            low, high = PROCEDURES[name](b, c, n)
            covs.append(float(w[(low <= pc - pb) & (pc - pb <= high)].sum()))
        print(f"| {n} | {pb} | {pc} | " + " | ".join(f"{v:.4f}" for v in covs) + " |")
    rng = np.random.default_rng(0)
    n_k = rng.integers(5, 50, 10_000)  # 10,000 classes of 5-50 test images
    b_k = rng.binomial(n_k, 0.1)
    c_k = rng.binomial(n_k - b_k, 0.08)
    mcnemar_interval(b_k, c_k, n_k)
    best = min(_timed(lambda: mcnemar_interval(b_k, c_k, n_k)) for _ in range(5))
    print(f"\nmcnemar_interval on 10,000 classes: {best * 1000:.0f} ms (best of 5)")


def _timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
