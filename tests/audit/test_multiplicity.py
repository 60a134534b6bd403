"""q-values against statsmodels multipletests."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from classgap.audit.multiplicity import adjust_pvalues
from classgap.errors import InputError

REFERENCE = {"bh": "fdr_bh", "holm": "holm"}


@pytest.mark.parametrize("method", ["bh", "holm"])
@pytest.mark.parametrize(("size", "seed"), [(1, 0), (5, 1), (100, 2), (1000, 3)])
def test_matches_statsmodels(method, size, seed):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(0, 0.05, size // 5), rng.uniform(0, 1, size - size // 5)])
    if size >= 5:
        p[:3] = [0.0, 1.0, p[3]]  # exact 0, exact 1, a tie
    np.testing.assert_allclose(adjust_pvalues(p, method),
                               multipletests(p, method=REFERENCE[method])[1], rtol=1e-12)


@pytest.mark.parametrize("method", ["bh", "holm"])
def test_nan_is_ignored_and_kept(method):
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.2, 30)
    p[[2, 7, 19]] = np.nan
    q = adjust_pvalues(p, method)
    assert np.isnan(q[[2, 7, 19]]).all()
    ok = ~np.isnan(p)
    np.testing.assert_allclose(q[ok], multipletests(p[ok], method=REFERENCE[method])[1])
    assert np.isnan(adjust_pvalues([np.nan, np.nan], method)).all()


def test_none_and_empty():
    p = np.array([0.3, np.nan, 0.01])
    np.testing.assert_array_equal(adjust_pvalues(p, "none"), p)
    assert adjust_pvalues([], "bh").shape == (0,)


def test_unknown_method_lists_choices():
    with pytest.raises(InputError, match=r"'method' must be one of 'bh', 'holm', 'none'; got "
                                         r"'fdr_bh'"):
        adjust_pvalues([0.1], "fdr_bh")


@pytest.mark.parametrize("bad", [[1.5], [-0.1], [np.inf], [[0.1, 0.2]]])
def test_invalid_pvalues(bad):
    with pytest.raises(InputError, match="'p' must"):
        adjust_pvalues(bad)
