"""The constrained plug-in rule (issue 21): brute force on small problems, a closed-form
optimum, infeasibility, determinism and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import norm

from classgap.errors import InputError
from classgap.fix import InfeasibleRuleError, fit_weights, plugin_predict, softmax


def problem(seed: int, n_classes: int, ref_acc: float, sizes: tuple[int, ...] = (40, 20, 80)
            ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Noisy scores of two candidate runs and two reference runs on one small validation set."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), sizes[:n_classes])
    probs = []
    for _ in range(2):
        logit = rng.normal(size=(y.size, n_classes)) * 1.2
        logit[np.arange(y.size), y] += rng.normal(1.0, 0.3, size=n_classes)[y]
        probs.append(softmax(logit))
    refs = [np.where(rng.random(y.size) < ref_acc, y, rng.integers(0, n_classes, y.size))
            for _ in range(2)]
    return y, probs, refs


def brute_force(y: np.ndarray, probs: list[np.ndarray], target: np.ndarray, c: np.ndarray,
                grid: np.ndarray) -> float:
    """The best objective of any offset vector on a grid (b_0 = 0) that meets every target."""
    logp = np.log(np.concatenate(probs))
    y_all = np.tile(y, len(probs))
    support = np.bincount(y_all, minlength=len(c))
    best = -np.inf
    for offsets in itertools.product(grid, repeat=len(c) - 1):
        pred = np.argmax(logp + np.array((0.0, *offsets)), axis=1)
        rec = np.bincount(y_all[pred == y_all], minlength=len(c)) / support
        if (rec >= target - 1e-12).all():
            best = max(best, float(c @ rec))
    return best


def weights_of(objective: str, y: np.ndarray, n_classes: int) -> np.ndarray:
    prior = np.bincount(y, minlength=n_classes) / y.size
    return prior if objective == "mean" else np.full(n_classes, 1.0 / n_classes)


def check_fit(fit, y, probs, c) -> None:
    """The reported figures are the rule's own, and it meets every target."""
    pred = np.concatenate([plugin_predict(p, fit.weights) for p in probs])
    y_all = np.tile(y, len(probs))
    rec = np.bincount(y_all[pred == y_all], minlength=len(c)) / np.bincount(y_all)
    np.testing.assert_allclose(rec, fit.after)
    assert fit.objective_after == pytest.approx(float(c @ rec))
    assert (fit.after >= fit.target - 1e-12).all()


@pytest.mark.parametrize("objective", ["mean", "balanced"])
@pytest.mark.parametrize("seed", [1, 2, 4, 5])
def test_two_classes_match_the_brute_force_optimum(seed: int, objective: str) -> None:
    """With K = 2 only b_1 - b_0 matters: the exact line search reaches the grid's optimum."""
    y, probs, refs = problem(seed, 2, 0.3, sizes=(60, 30))
    fit = fit_weights(y, probs, refs, objective=objective, z=0.0, polish=True)
    c = weights_of(objective, y, 2)
    check_fit(fit, y, probs, c)
    best = brute_force(y, probs, fit.target, c, np.linspace(-6, 6, 2401))
    assert fit.objective_after >= best - 1e-12


@pytest.mark.parametrize("objective", ["mean", "balanced"])
@pytest.mark.parametrize("seed", [1, 2, 4, 5])
def test_three_classes_near_the_brute_force_optimum(seed: int, objective: str) -> None:
    """K = 3, 140 images x 2 runs: feasible, and within one image-step per class of the best
    offsets on a 321 x 321 grid (coordinate ascent after the dual is not a global search)."""
    y, probs, refs = problem(seed, 3, 0.4)
    fit = fit_weights(y, probs, refs, objective=objective, z=0.0, polish=True)
    c = weights_of(objective, y, 3)
    check_fit(fit, y, probs, c)
    best = brute_force(y, probs, fit.target, c, np.linspace(-4, 4, 321))
    assert fit.objective_after >= fit.objective_before or (fit.before < fit.target).any()
    assert fit.objective_after >= best - 0.012


@pytest.mark.parametrize("seed", [0, 3])
def test_infeasible_when_brute_force_finds_nothing(seed: int) -> None:
    y, probs, refs = problem(seed, 3, 0.4)
    with pytest.raises(InfeasibleRuleError, match="raise the tolerance"):
        fit_weights(y, probs, refs, z=0.0)
    ref_acc = np.bincount(y, weights=np.mean([r == y for r in refs], axis=0)) / np.bincount(y)
    assert brute_force(y, probs, ref_acc, weights_of("mean", y, 3),
                       np.linspace(-4, 4, 321)) == -np.inf


def test_perfect_reference_is_infeasible_not_silently_unconstrained() -> None:
    y, probs, _ = problem(0, 3, 0.4)
    with pytest.raises(InfeasibleRuleError, match=r"'tolerance' 0 points.*target 100.00%"):
        fit_weights(y, probs, [y.copy()], z=0.0)
    # a tolerance wide enough makes it feasible again
    fit = fit_weights(y, probs, [y.copy()], z=0.0, tolerance=0.9)
    assert (fit.after >= 0.1 - 1e-12).all()


def test_gaussian_closed_form() -> None:
    """x ~ N(+-mu, 1), equal priors, calibrated p_1 = sigmoid(2 mu x). With class 1 held at
    recall t > Phi(mu), the best rule is the threshold tau* = mu - Phi^-1(t), i.e. the offset
    b_1 - b_0 = -2 mu tau*, and mean accuracy (t + Phi(mu + tau*)) / 2."""
    mu, t, n = 1.0, 0.9, 20_000
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], n)
    x = rng.normal(np.where(y == 1, mu, -mu), 1.0)
    p1 = expit(2 * mu * x)
    probs = np.column_stack([1 - p1, p1])
    ref = y.copy()  # reference right on exactly the first t of class 1, half of class 0
    ref[(y == 1) & (np.arange(2 * n) >= n + int(t * n))] = 0
    ref[(y == 0) & (np.arange(2 * n) < n // 2)] = 1
    fit = fit_weights(y, [probs], [ref], z=0.0)
    tau = mu - norm.ppf(t)
    assert fit.offsets[1] - fit.offsets[0] == pytest.approx(-2 * mu * tau, abs=0.03)
    assert fit.after[1] == pytest.approx(t, abs=1e-3) and fit.after[1] >= t
    assert fit.objective_after == pytest.approx((t + norm.cdf(mu + tau)) / 2, abs=0.005)
    unconstrained = (norm.cdf(mu) + norm.cdf(mu)) / 2
    assert fit.objective_before == pytest.approx(unconstrained, abs=0.005)


def test_inactive_constraints_keep_the_plain_argmax() -> None:
    """A reference worse on every class: lambda = 0, w = pi / pi = 1, the model's own argmax."""
    y, probs, _ = problem(1, 3, 0.4)
    fit = fit_weights(y, probs, [(y + 1) % 3], z=0.0)  # always wrong
    np.testing.assert_allclose(fit.weights, 1.0)
    np.testing.assert_allclose(fit.after, fit.before)


def test_margin_is_met_or_lowered_to_what_validation_allows() -> None:
    y, probs, refs = problem(1, 3, 0.4)
    bare = fit_weights(y, probs, refs, z=0.0)
    fit = fit_weights(y, probs, refs, z=3.0)
    assert 0.0 <= fit.z_used <= 3.0
    assert (fit.after >= fit.target - 1e-12).all()
    assert (fit.target >= bare.target - 1e-12).all()
    assert fit.objective_after <= bare.objective_after + 1e-12


def test_deterministic() -> None:
    y, probs, refs = problem(2, 3, 0.4)
    a = fit_weights(y, probs, refs, z=1.0)
    b = fit_weights(y, [p.copy() for p in probs], [r.copy() for r in refs], z=1.0)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.after, b.after)


@pytest.mark.parametrize(("change", "message"), [
    (lambda y, p, r: (y, [p[0], p[1][:, :2]], r), "candidate_probs.*shape"),
    (lambda y, p, r: (y, [np.where(p[0] > 0.9, np.nan, p[0]), p[1]], r),
     "'candidate_probs' must be finite"),
    (lambda y, p, r: (y, p, [r[0][:-1]]), "reference_pred.*shape"),
    (lambda y, p, r: (y, [], r), "candidate_probs' must hold at least one run"),
    (lambda y, p, r: (y, p, []), "reference_pred' must hold at least one run"),
    (lambda y, p, r: (y + 5, p, r), "'y_true' must hold labels in"),
])
def test_bad_input(change, message) -> None:
    y, probs, refs = problem(1, 3, 0.4)
    with pytest.raises(InputError, match=message):
        fit_weights(*change(y, probs, refs))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"objective": "worst"}, "'objective' must be one of"),
    ({"tolerance": -0.1}, "'tolerance' must be in"),
    ({"z": float("nan")}, "'z' must be in"),
])
def test_bad_options(kwargs, message) -> None:
    y, probs, refs = problem(1, 3, 0.4)
    with pytest.raises(InputError, match=message):
        fit_weights(y, probs, refs, **kwargs)
