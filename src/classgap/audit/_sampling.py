"""Binomial counts for the class-stratified bootstrap, drawn by inverting small CDFs.

Resampling the ``n_k`` test images of class ``k`` with replacement matters only through how
many drawn images are correct, which is exactly ``Binomial(n_k, c_k / n_k)``. numpy's
``Generator.binomial`` costs 125-250 ns a draw on a 2-core EPYC, so 1000 replicates of
10,000 classes spend 1.3-2.5 s in it alone. Test sets with many classes have few images per
class (iNaturalist-2021 validation: 10, ImageNet: 50), and for small ``n`` inversion is
cheaper: with ``u`` uniform on ``[0, 1)``,

    X = #{j : u < P(X > j)}

is ``Binomial(n, p)``, one float32 uniform and about ``n`` comparisons per draw, all of them
vectorised over replicates. Classes are laid out by how many thresholds are *live* (strictly
between 0 and 1 in float32, the only ones a float32 uniform can fall on either side of), so
pass ``t`` of the loop touches only the classes that still need it; a threshold of 1 always
counts and one of 0 never does, exactly as in the comparison. Classes with more than
:data:`INVERSION_MAX_N` images use ``Generator.binomial`` (few such classes in a test set with
many classes, and a draw there costs the same whatever ``n``).

The counts are exact draws up to the float32 uniform's resolution (2^-24 in probability);
the same generator state gives the same counts. Replicates come in blocks of rows of about
:data:`BLOCK_ELEMENTS` cells, so that statistics can be computed block by block without
holding every replicate of every class at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import stats

INVERSION_MAX_N = 64
"""Classes with at most this many test images are drawn by inversion."""
BLOCK_ELEMENTS = 1 << 21
"""Replicates × classes per block (2M cells: 8 MB of float32 uniforms)."""


def block_rows(n_rows: int, n_classes: int) -> Iterator[int]:
    """Row counts of the blocks ``n_rows`` replicates of ``n_classes`` classes are drawn in."""
    step = max(1, BLOCK_ELEMENTS // max(n_classes, 1))
    for start in range(0, n_rows, step):
        yield min(step, n_rows - start)


class BinomialSampler:
    """Draws ``Binomial(support_k, correct_k / support_k)`` counts for every class ``k``.

    Parameters
    ----------
    correct, support : array of int64, shape (K,)
        Validated counts, ``0 <= correct <= support`` (a class with support 0 draws 0).

    Examples
    --------
    >>> sampler = BinomialSampler(np.array([3, 0, 10]), np.array([10, 5, 10]))
    >>> counts = sampler.draw(4, np.random.default_rng(0))
    >>> counts.shape, counts[:, 1].tolist(), counts[:, 2].tolist()
    ((4, 3), [0, 0, 0, 0], [10, 10, 10, 10])
    """

    def __init__(self, correct: np.ndarray, support: np.ndarray) -> None:
        self.n_classes = support.size
        small = support <= INVERSION_MAX_N
        self._large = np.flatnonzero(~small)
        self._large_n = support[self._large]
        self._large_p = correct[self._large] / support[self._large]
        self._small = np.flatnonzero(small)
        self._identity = False
        self._prepare_inversion(correct[self._small], support[self._small])

    def _prepare_inversion(self, c: np.ndarray, n: np.ndarray) -> None:
        # Survival thresholds P(X > j), j = 0 .. max n - 1, for each distinct (n, c) pair only:
        # p = c / n, so a test set has at most ~2,000 distinct pairs whatever its K.
        width = int(n.max(initial=0))
        key = n * (INVERSION_MAX_N + 1) + c
        pairs, which = np.unique(key, return_inverse=True)
        pn, pc = pairs // (INVERSION_MAX_N + 1), pairs % (INVERSION_MAX_N + 1)
        j = np.arange(width)
        with np.errstate(invalid="ignore", divide="ignore"):
            sf = stats.binom.sf(j[None, :], pn[:, None], pc[:, None] / np.maximum(pn, 1)[:, None])
        sf = np.where(j[None, :] < pn[:, None], sf, 0.0).astype(np.float32)[which]  # (Ks, W)
        always = (sf >= 1.0).sum(axis=1)  # thresholds every uniform is below (sf is falling)
        live = ((sf > 0.0) & (sf < 1.0)).sum(axis=1)  # a contiguous run after ``always``
        order = np.argsort(-live, kind="stable")  # classes needing most passes first
        self._order = order
        self._always = always[order].astype(np.int8)  # counts stay <= INVERSION_MAX_N
        self._columns = self._small[order]  # output column of each sorted class
        n_live = live[order]
        depth = int(n_live.max(initial=0))
        t = np.arange(depth)
        cols = np.minimum(always[order][None, :] + t[:, None], max(width - 1, 0))
        self._thresholds = np.take_along_axis(sf[order].T, cols, axis=0) if depth else \
            np.zeros((0, order.size), np.float32)  # (depth, Ks): pass t's threshold per class
        self._identity = bool(np.array_equal(self._columns, np.arange(self._columns.size)))
        # Pass t compares the first ``width_t`` classes (those with more than t live thresholds).
        self._widths = (n_live[None, :] > t[:, None]).sum(axis=1)

    def draw(self, n_rows: int, rng: np.random.Generator) -> np.ndarray:
        """``(n_rows, K)`` int32 counts of correct images, one replicate a row."""
        out = np.empty((n_rows, self.n_classes), dtype=np.int32)
        if self._small.size:
            u = rng.random((n_rows, self._small.size), dtype=np.float32)  # [0, 1)
            counts = np.broadcast_to(self._always, u.shape).copy()
            below = np.empty(u.shape, dtype=bool)
            for threshold, width in zip(self._thresholds, self._widths, strict=True):
                hit = below[:, :width]
                np.less(u[:, :width], threshold[:width], out=hit)
                counts[:, :width] += hit.view(np.int8)
            if self._large.size == 0 and self._identity:
                out[...] = counts
            else:
                out[:, self._columns] = counts
        if self._large.size:
            out[:, self._large] = rng.binomial(self._large_n, self._large_p,
                                               size=(n_rows, self._large.size))
        return out

    def blocks(self, n_rows: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
        """The ``n_rows`` replicates as successive blocks of rows (see :func:`block_rows`)."""
        for rows in block_rows(n_rows, self.n_classes):
            yield self.draw(rows, rng)
