"""Transfer (spec step 8): frozen backbone features and a linear probe on a downstream task.

One backbone per strength is frozen, its penultimate features are extracted on the downstream
images, and a multinomial logistic regression is fitted on them; the probe's test logits become
ordinary :class:`~classgap.audit.io.Predictions`, analysed like the source task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from classgap._validation import check_labels, check_positive_int, fail

__all__ = ["DEFAULT_CS", "extract_features", "linear_probe"]

DEFAULT_CS = (0.01, 0.1, 1.0, 10.0)  # inverse L2 strengths tried on the held-out split
HOLDOUT = 0.2  # fraction of the downstream train split used to choose C
MAX_ITER = 2000  # lbfgs on standardised features converges well before this


def _probe(c: float) -> Any:
    # Standardise first: lbfgs and one C grid only make sense on comparable feature scales.
    # lbfgs fits the multinomial (softmax) loss for K > 2 by default in scikit-learn >= 1.5.
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=MAX_ITER))


def linear_probe(features_train: Any, y_train: Any, features_test: Any, y_test: Any, *,
                 random_state: int, Cs: Sequence[float] = DEFAULT_CS,
                 ) -> np.ndarray:
    """Fit a multinomial logistic-regression probe on frozen features; return test logits.

    ``C`` is chosen by accuracy on a stratified held-out 20 % of the training features
    (seeded by ``random_state``; ties go to the smaller C, i.e. the stronger regularisation),
    then the probe is refitted on the whole training split. ``y_test`` is only checked (it
    fixes nothing about the fit), so the test set never influences the probe.

    Parameters
    ----------
    features_train : array of float, shape (N_train, D)
    y_train : array of int, shape (N_train,)
        Every class 0..K-1 must occur (the probe needs one weight row per class).
    features_test : array of float, shape (N_test, D)
    y_test : array of int, shape (N_test,)
    random_state : int
    Cs : sequence of float

    Returns
    -------
    ndarray of float64, shape (N_test, K)
        Decision values (logits up to a per-row constant); ``argmax`` is the prediction.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.arange(200) % 2
    >>> x = rng.normal(size=(200, 3)) + 3.0 * y[:, None]
    >>> logits = linear_probe(x[:100], y[:100], x[100:], y[100:], random_state=0)
    >>> logits.shape, float((logits.argmax(1) == y[100:]).mean()) > 0.9
    ((100, 2), True)
    """
    xtr = np.asarray(features_train, dtype=np.float64)
    xte = np.asarray(features_test, dtype=np.float64)
    if xtr.ndim != 2 or xte.ndim != 2 or xtr.shape[1] != xte.shape[1]:
        raise fail("features_test", "be 2-D with the same number of columns as "
                   "'features_train'", f"shapes {xtr.shape} and {xte.shape}")
    if not (np.isfinite(xtr).all() and np.isfinite(xte).all()):
        raise fail("features_train", "be finite (both splits)", "NaN or inf")
    ytr = check_labels(y_train, "y_train")
    if len(ytr) != len(xtr):
        raise fail("y_train", f"have one label per training row ({len(xtr)})", len(ytr))
    k = int(ytr.max()) + 1
    counts = np.bincount(ytr, minlength=k)
    if (counts < 2).any():
        raise fail("y_train", "hold every class 0..K-1 at least twice",
                   f"class {int(np.argmin(counts))} with {int(counts.min())} samples")
    yte = check_labels(y_test, "y_test", n_classes=k)
    if len(yte) != len(xte):
        raise fail("y_test", f"have one label per test row ({len(xte)})", len(yte))
    if not Cs:
        raise fail("Cs", "hold at least one value", list(Cs))

    fit_x, hold_x, fit_y, hold_y = train_test_split(
        xtr, ytr, test_size=HOLDOUT, stratify=ytr, random_state=random_state)
    scores = [_probe(c).fit(fit_x, fit_y).score(hold_x, hold_y) for c in Cs]
    order = np.argsort(np.asarray(Cs, float), kind="stable")
    best = max(order, key=lambda i: scores[i])  # max keeps the first, i.e. smallest C, on ties
    model = _probe(float(Cs[best])).fit(xtr, ytr)
    logits = model.decision_function(xte)
    if k == 2:  # binary decision_function is one column: make it two logits
        logits = np.stack([np.zeros_like(logits), logits], axis=1)
    return np.asarray(logits, dtype=np.float64)


@torch.no_grad()
def extract_features(model: torch.nn.Module, images_uint8: Any, mean: Any, std: Any,
                     batch_size: int = 512) -> np.ndarray:
    """Penultimate features of a frozen model, ``model(x, return_features=True)[1]``.

    Parameters
    ----------
    model : torch.nn.Module
        A classgap model; put in eval mode here (dropout and batch-norm statistics frozen) and
        restored to its previous mode afterwards.
    images_uint8 : array or tensor of uint8, shape (N, C, H, W)
    mean, std : array of float, shape (C,)
        Normalisation of the backbone's training split, in [0, 1] units
        (:func:`classgap.data.loader.channel_stats`).
    batch_size : int

    Returns
    -------
    ndarray of float32, shape (N, D)
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    x_all = torch.as_tensor(np.asarray(images_uint8))
    if x_all.dtype != torch.uint8 or x_all.ndim != 4:
        raise fail("images_uint8", "be a uint8 array of shape (N, C, H, W)",
                   f"dtype {x_all.dtype}, shape {tuple(x_all.shape)}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    c = x_all.shape[1]
    m = torch.as_tensor(np.asarray(mean, np.float32)).view(1, c, 1, 1).to(device)
    s = torch.as_tensor(np.asarray(std, np.float32)).view(1, c, 1, 1).to(device)
    was_training = model.training
    model.eval()
    try:
        out = []
        for start in range(0, len(x_all), batch_size):
            x = x_all[start:start + batch_size].to(device).float() / 255.0  # (B, C, H, W)
            _, features = model((x - m) / s, return_features=True)  # (B, D)
            out.append(features.float().cpu())
    finally:
        model.train(was_training)
    if not out:
        raise fail("images_uint8", "hold at least one image", "0 images")
    return torch.cat(out).numpy()
