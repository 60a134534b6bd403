"""Common checks over every registered loss: neutral settings, weights, and boundary errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from classgap.errors import ConfigError, InputError
from classgap.losses import DRW, ClassAwareLoss, create_loss, list_losses, loss_info

K = 4
UNIFORM = [50] * K
SKEWED = [100, 30, 10, 3]

# Every loss in its neutral setting: (params, class_counts, tolerance). LDAM's neutral point is
# zero margin with s = 1 (its cross-entropy limit).
NEUTRAL: dict[str, list[tuple[dict, list[int] | None, float]]] = {
    "ce": [({}, None, 0.0), ({"label_smoothing": 0.0}, SKEWED, 0.0)],
    "focal": [({"gamma": 0.0}, None, 1e-6)],
    "poly": [({"theta": 0.0, "gamma": 0.0}, None, 1e-6)],
    "class_balanced": [({}, UNIFORM, 1e-6), ({"beta": 0.0}, SKEWED, 1e-6)],
    "ldam": [({"max_m": 0.0, "s": 1.0}, UNIFORM, 1e-6),
             ({"max_m": 0.0, "s": 1.0}, SKEWED, 1e-6)],
    "vs": [({"gamma": 0.0, "tau": 0.0}, SKEWED, 1e-6), ({"gamma": 0.3}, UNIFORM, 1e-6)],
    "logit_adjusted": [({"tau": 0.0}, SKEWED, 1e-6), ({"tau": 1.0}, UNIFORM, 1e-6)],
    "balanced_softmax": [({}, UNIFORM, 1e-6)],
    "mr2": [({"c_bar": 1.0, "lam": 0.0}, None, 1e-6),
            ({"c_bar": 1.0, "lam": 0.0, "p": 5.0}, SKEWED, 1e-6)],
}
CASES = [(name, i) for name, cases in NEUTRAL.items() for i in range(len(cases))]


def _batch(seed: int = 0, per_class: int = 3) -> tuple[torch.Tensor, ...]:
    """Logits (N, K), targets (N,), and features (N, K+1) whose classes share M and V.

    Class c has samples e_c + δ·e_K, e_c - δ·e_K and e_c: mean e_c (|e_c|_p = 1 for every p)
    and the same spread 2δ²/3, so MR² margins are all c̄ from the first batch on.
    """
    g = torch.Generator().manual_seed(seed)
    targets = torch.arange(K).repeat_interleave(per_class)
    logits = torch.randn(len(targets), K, generator=g) * 3
    delta = 0.7
    offsets = torch.tensor([delta, -delta, 0.0]).repeat(K)
    features = torch.zeros(len(targets), K + 1)
    features[torch.arange(len(targets)), targets] = 1.0
    features[:, K] = offsets
    return logits, targets, features


def test_neutral_table_covers_the_registry():
    assert set(NEUTRAL) == set(list_losses())


@pytest.mark.parametrize(("name", "case"), CASES)
def test_every_loss_reduces_to_cross_entropy_in_its_neutral_setting(name, case):
    params, counts, tol = NEUTRAL[name][case]
    loss = create_loss(name, class_counts=counts, num_classes=K, **params)
    logits, targets, features = _batch(seed=case)
    got = loss(logits, targets, features=features)
    expected = F.cross_entropy(logits, targets)
    assert got.shape == ()
    torch.testing.assert_close(got, expected, atol=tol, rtol=tol)
    if name == "ldam":  # and the neutral point is a real limit: a visible margin moves it
        moved = create_loss(name, class_counts=counts, max_m=0.5, s=1.0)(logits, targets)
        assert abs(float(moved - expected)) > 1e-3


@pytest.mark.parametrize("name", list_losses())
def test_modules_share_the_trainer_contract(name):
    loss = create_loss(name, class_counts=SKEWED)
    assert isinstance(loss, ClassAwareLoss)
    assert isinstance(loss.needs_features, bool)
    assert loss.needs_features == (name == "mr2") == loss_info(name)["needs_features"]
    logits, targets, features = _batch()
    logits.requires_grad_(True)
    features.requires_grad_(True)
    out = loss(logits, targets, features=features, validate=False)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(logits.grad).all()
    loss.on_epoch_start(0)  # the hook exists everywhere


@pytest.mark.parametrize("name", list_losses())
def test_set_weight_gives_the_weighted_mean_of_per_sample_losses(name):
    """Σ w_{y_i} ℓ_i / Σ w_{y_i} for every loss, ℓ_i the unweighted loss of sample i alone."""
    params = {"lam": 0.0, "c_bar": 2.0} if name == "mr2" else {}
    loss = create_loss(name, class_counts=SKEWED, **params)
    loss.eval()  # MR²: freeze the statistics so each call sees the same margins
    logits, targets, features = _batch(seed=3)
    loss.set_weight(None)
    per_sample = [float(loss(logits[i:i + 1], targets[i:i + 1], features=features[i:i + 1]))
                  for i in range(len(targets))]
    w = [0.5, 1.0, 2.0, 4.0]
    loss.set_weight(torch.tensor(w))
    num = sum(w[int(y)] * v for y, v in zip(targets, per_sample, strict=True))
    den = sum(w[int(y)] for y in targets)
    got = float(loss(logits, targets, features=features))
    assert got == pytest.approx(num / den, rel=1e-5)


def test_weight_param_on_ce_matches_torch_weighted_cross_entropy():
    logits, targets, _ = _batch(seed=5)
    w = torch.tensor([1.0, 2.0, 0.5, 3.0])
    got = create_loss("ce", num_classes=K, weight=w)(logits, targets)
    torch.testing.assert_close(got, F.cross_entropy(logits, targets, weight=w))


def test_drw_apply_sets_loss_weights():
    loss = create_loss("ldam", class_counts=SKEWED)
    drw = DRW(SKEWED, start_epoch=2)
    drw.apply(loss, 1)
    assert torch.equal(loss.weight, torch.ones(K))
    drw.apply(loss, 2)
    assert torch.equal(loss.weight, drw.weights_at(2))
    assert not torch.equal(loss.weight, torch.ones(K))


# ------------------------------------------------------------------------------ errors
def test_unknown_loss_name_lists_names_and_suggests_the_closest():
    with pytest.raises(ConfigError) as err:
        create_loss("focla")
    msg = str(err.value)
    assert "got 'focla'" in msg and "did you mean 'focal'?" in msg
    assert all(repr(n) in msg for n in list_losses())


def test_unknown_param_is_named_and_the_loss_params_listed():
    with pytest.raises(ConfigError) as err:
        create_loss("focal", gama=2.0)
    msg = str(err.value)
    assert "'gama'" in msg and "'gamma'" in msg and "'weight'" in msg and "loss 'focal'" in msg
    assert "did you mean 'gamma'?" in msg


@pytest.mark.parametrize("name", ["class_balanced", "ldam", "vs", "logit_adjusted",
                                  "balanced_softmax"])
def test_count_based_losses_need_class_counts(name):
    assert loss_info(name)["needs_counts"]
    with pytest.raises(ConfigError, match=r"needs 'class_counts'.*got None"):
        create_loss(name, num_classes=K)


def test_mr2_needs_num_classes():
    with pytest.raises(ConfigError, match="'num_classes'"):
        create_loss("mr2")
    assert create_loss("mr2", class_counts=SKEWED).num_classes == K


@pytest.mark.parametrize(("name", "param", "value"), [
    ("ce", "label_smoothing", 1.0), ("ce", "label_smoothing", -0.1),
    ("focal", "gamma", -0.5), ("class_balanced", "beta", 1.0), ("class_balanced", "beta", -0.1),
    ("ldam", "max_m", -0.1), ("ldam", "s", 0.0), ("ldam", "s", float("nan")),
    ("vs", "gamma", -1.0), ("vs", "tau", -1.0), ("logit_adjusted", "tau", -1.0),
    ("mr2", "c_bar", 0.0), ("mr2", "lam", -0.1), ("mr2", "ema", 1.0), ("mr2", "p", 0.0),
    ("mr2", "temperature", 0.0), ("mr2", "temperature", -2.0), ("focal", "gamma", "2"),
])
def test_params_out_of_range_raise_config_error(name, param, value):
    with pytest.raises(ConfigError) as err:
        create_loss(name, class_counts=SKEWED, **{param: value})
    assert f"'{param}' must be a finite number in" in str(err.value)
    assert f"got {value!r}" in str(err.value)


@pytest.mark.parametrize(("counts", "num_classes", "pattern"), [
    ([10, 0, 3, 4], None, r"'class_counts' must hold integers > 0 .*; got 0\.0 at index 1"),
    ([10, -2, 3, 4], None, r"got -2\.0 at index 1"),
    ([10, 2.5, 3, 4], None, r"got 2\.5 at index 1"),
    ([10, float("nan"), 3, 4], None, r"got nan at index 1"),
    ([10, 2, 3], 4, r"'class_counts' must have one entry per class \(4\); got 3 entries"),
    ([[10, 2], [3, 4]], None, r"'class_counts' must be a non-empty 1-D .*; got shape \(2, 2\)"),
    ([], None, r"got shape \(0,\)"),
])
def test_bad_class_counts_are_named_with_the_value(counts, num_classes, pattern):
    with pytest.raises(InputError, match=pattern):
        create_loss("ldam", class_counts=counts, num_classes=num_classes)


def test_bad_weight_is_named():
    with pytest.raises(InputError, match=r"'weight' must have one entry per class \(4\)"):
        create_loss("ce", num_classes=K, weight=[1.0, 2.0])
    with pytest.raises(InputError, match=r"'weight' must hold finite numbers >= 0; got -1\.0"):
        create_loss("vs", class_counts=SKEWED, weight=[1.0, -1.0, 1.0, 1.0])
    with pytest.raises(InputError, match="all zeros"):
        create_loss("focal").set_weight(torch.zeros(3))


def test_bad_batches_raise_input_error():
    loss = create_loss("logit_adjusted", class_counts=SKEWED)
    logits, targets, _ = _batch()
    with pytest.raises(InputError, match=r"'logits' must be a float tensor of shape \(N, K\)"):
        loss(logits[0], targets)
    with pytest.raises(InputError, match=r"'logits' must have one column per class \(4\)"):
        loss(logits[:, :3], targets)
    with pytest.raises(InputError, match=r"'targets' must be an integer tensor of shape \(12,\)"):
        loss(logits, targets.float())
    with pytest.raises(InputError, match=r"shape \(11,\)"):
        loss(logits, targets[:-1])
    bad = targets.clone()
    bad[5] = 4
    with pytest.raises(InputError, match=r"'targets' must hold class indices in \[0, 3\]; "
                                         r"got 4 at row 5"):
        loss(logits, bad)


def test_missing_features_for_mr2_is_a_clear_input_error():
    loss = create_loss("mr2", num_classes=K)
    logits, targets, features = _batch()
    with pytest.raises(InputError) as err:
        loss(logits, targets)
    msg = str(err.value)
    assert "'features' must be given for loss 'mr2'" in msg and "features=f" in msg
    with pytest.raises(InputError, match=r"'features' must be a float tensor of shape \(12, D\)"):
        loss(logits, targets, features=features[:3])


def test_validate_false_gives_the_same_value():
    loss = create_loss("vs", class_counts=SKEWED)
    logits, targets, _ = _batch(seed=9)
    assert torch.equal(loss(logits, targets), loss(logits, targets, validate=False))
