"""Tests of classgap.models: common checks parametrized over the registry, then specifics."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from classgap.errors import InputError
from classgap.models import (
    ClassifierModel,
    CosineHead,
    LinearHead,
    ShortcutA,
    create_model,
    list_heads,
    list_models,
    make_head,
    model_info,
)

MODELS = list_models()
K = 7  # a class count no model hard-codes
# (in_channels, (H, W)): grayscale 28×28 (Fashion-MNIST) and RGB 32×32 (CIFAR); every model
# takes both (the MLP is built for each size).
INPUTS = {"gray28": (1, (28, 28)), "rgb32": (3, (32, 32))}


def _build(name: str, input_key: str = "rgb32", seed: int = 0, **kw: object) -> ClassifierModel:
    c, size = INPUTS[input_key]
    torch.manual_seed(seed)
    return create_model(name, num_classes=K, in_channels=c, image_size=size, **kw)


def _batch(input_key: str = "rgb32", n: int = 4, seed: int = 1) -> torch.Tensor:
    c, (h, w) = INPUTS[input_key]
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_registry_names() -> None:
    assert MODELS == ["cnn", "cnn_small", "mlp", "resnet18", "resnet20", "resnet32"]
    assert list_heads() == ["cosine", "linear"]


@pytest.mark.parametrize("input_key", list(INPUTS))
@pytest.mark.parametrize("head", ["linear", "cosine"])
@pytest.mark.parametrize("name", MODELS)
def test_maps_nchw_to_nk(name: str, head: str, input_key: str) -> None:
    model = _build(name, input_key, head=head)
    assert isinstance(model.head, CosineHead if head == "cosine" else LinearHead)
    x = _batch(input_key, n=2 if name == "resnet18" else 4)
    for train in (True, False):
        model.train(train)
        with torch.no_grad():
            logits, feats = model(x, return_features=True)
            plain = model(x)
        assert logits.shape == (len(x), K) and plain.shape == (len(x), K)
        assert feats.shape == (len(x), model.feature_dim)
        assert torch.isfinite(logits).all() and torch.isfinite(feats).all()
        if head == "cosine":  # scale 1: cosines
            assert logits.abs().max() <= 1 + 1e-5


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_outputs(name: str) -> None:
    x = _batch(n=2)
    a, b = _build(name, seed=3), _build(name, seed=3)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))  # train mode (batch statistics)
        assert torch.equal(a.eval()(x), b.eval()(x))
    c = _build(name, seed=4)
    assert not torch.equal(next(iter(a.parameters())), next(iter(c.parameters())))


@pytest.mark.parametrize("name", MODELS)
def test_autocast_bf16_channels_last(name: str) -> None:
    model = _build(name, head="cosine" if name == "resnet20" else "linear")
    model = model.to(memory_format=torch.channels_last).eval()
    x = _batch(n=2).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits, feats = model(x, return_features=True)
    assert logits.shape == (2, K) and torch.isfinite(logits).all()
    assert torch.isfinite(feats.float()).all()
    with torch.no_grad():  # channels_last alone changes nothing but the memory layout
        ref = model(x.contiguous())
        assert torch.allclose(model(x), ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("head", ["linear", "cosine"])
@pytest.mark.parametrize("name", MODELS)
def test_gradients_reach_every_parameter(name: str, head: str) -> None:
    model = _build(name, head=head, dropout=0.2).train()
    n = 2 if name == "resnet18" else 4  # resnet18: one cheap backward
    x, y = _batch(n=n), torch.arange(n)
    F.cross_entropy(model(x) * (30.0 if head == "cosine" else 1.0), y).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_parameter_counts() -> None:
    def count(name: str, c: int, size: tuple[int, int]) -> int:
        with torch.device("meta"):  # no allocation: resnet18 stays cheap
            m = create_model(name, num_classes=10, in_channels=c, image_size=size)
        return sum(p.numel() for p in m.parameters())

    assert count("resnet32", 3, (32, 32)) == pytest.approx(0.46e6, rel=0.02)
    assert count("resnet20", 3, (32, 32)) == pytest.approx(0.27e6, rel=0.02)
    assert count("resnet18", 3, (32, 32)) == pytest.approx(11.2e6, rel=0.02)
    assert 80_000 <= count("cnn", 1, (28, 28)) <= 200_000
    assert 80_000 <= count("cnn", 3, (32, 32)) <= 200_000
    # the published counts of the reference implementations, exactly
    assert count("resnet32", 3, (32, 32)) == 464_154
    assert count("resnet20", 3, (32, 32)) == 269_722
    assert count("resnet18", 3, (32, 32)) == 11_173_962
    assert count("cnn_small", 1, (28, 28)) == 119_626  # the study spec's pilot net


def test_macs_per_image_by_hand() -> None:
    # cnn_small at 28×28: conv 1→32 (28²·32·9) + conv 32→64 (14²·64·32·9) + fc 3136→32 + 32→10
    assert model_info("cnn_small")["macs"] == 28 * 28 * 32 * 9 + 14 * 14 * 64 * 32 * 9 \
        + 3136 * 32 + 32 * 10
    assert model_info("mlp")["macs"] == 784 * 256 + 256 * 128 + 128 * 10
    assert model_info("cnn")["macs"] > 5 * model_info("cnn_small")["macs"]


@pytest.mark.parametrize("name", MODELS)
def test_model_info(name: str) -> None:
    rng = torch.random.get_rng_state()
    info = model_info(name)
    assert torch.equal(rng, torch.random.get_rng_state())  # built on meta: RNG untouched
    assert set(info) == {"name", "description", "default_input", "min_image_size",
                         "feature_dim", "params", "macs", "reference", "options"}
    c, h, w = info["default_input"]
    model = create_model(name, num_classes=10, in_channels=c, image_size=(h, w))
    assert info["params"] == sum(p.numel() for p in model.parameters())
    assert info["feature_dim"] == model.feature_dim
    assert model.config["name"] == name and model.config["image_size"] == [h, w]


def test_option_a_shortcut() -> None:
    sc = ShortcutA(16, 32, stride=2)
    assert sum(p.numel() for p in sc.parameters()) == 0
    x = torch.randn(2, 16, 8, 8)
    out = sc(x)
    assert out.shape == (2, 32, 4, 4)
    assert torch.equal(out[:, 8:24], x[:, :, ::2, ::2])  # the input, centred...
    assert not out[:, :8].any() and not out[:, 24:].any()  # ...between zero channels
    # CIFAR ResNets: the only 1×1 convs would be option-B projections; there are none.
    for name in ("resnet20", "resnet32"):
        convs = [m for m in _build(name).modules() if isinstance(m, nn.Conv2d)]
        assert all(m.kernel_size == (3, 3) for m in convs)
        assert sum(isinstance(m, ShortcutA) for m in _build(name).modules()) == 2


def test_dropout_is_used_before_the_head() -> None:
    model = _build("cnn", dropout=0.9)
    assert model.dropout.p == 0.9
    x = _batch(n=8)
    model.train()
    with torch.no_grad():
        # fix BatchNorm to its (initial) running statistics so only dropout differs
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        train_logits, train_feats = model(x, return_features=True)
        model.eval()
        eval_logits, eval_feats = model(x, return_features=True)
    assert not torch.allclose(train_logits, eval_logits)
    assert torch.equal(train_feats, eval_feats)  # features are taken before dropout
    assert _build("cnn").dropout.p == 0.0


def test_cosine_head() -> None:
    head = make_head("cosine", 16, 5, scale=30.0)
    f = torch.randn(64, 16)
    z = head(f)
    assert z.abs().max() <= 30 + 1e-4
    w = head.weight
    expected = 30 * (f / f.norm(dim=1, keepdim=True)) @ (w / w.norm(dim=1, keepdim=True)).T
    assert torch.allclose(z, expected, atol=1e-5)
    # a feature along a class direction gives cosine 1 with that class, at any length
    assert torch.allclose(head(3.7 * w[2:3].detach())[0, 2], torch.tensor(30.0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert head(f.bfloat16()).dtype == torch.float32  # computed in fp32 (see docstring)
    model = create_model("cnn", num_classes=4, in_channels=1, image_size=(28, 28),
                         head="cosine", head_kwargs={"scale": 16.0})
    assert model.head.scale == 16.0


def test_cnn_width_and_mlp_options() -> None:
    wide = _build("cnn", width=2.0)
    assert wide.feature_dim == 256
    mlp = _build("mlp", "gray28", hidden=(64, 32, 16), batchnorm=True)
    assert mlp.feature_dim == 16
    assert sum(isinstance(m, nn.BatchNorm1d) for m in mlp.modules()) == 3
    assert mlp(_batch("gray28")).shape == (4, K)


def test_torch_func_per_sample_grads() -> None:
    # vmap(grad(functional_call)) is how per-sample gradients are computed; in-place ops or
    # data-dependent Python control flow in forward would break it.
    model = _build("cnn", "gray28").eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    x, y = _batch("gray28", n=3), torch.tensor([0, 1, 2])

    def loss(p: dict, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        out = torch.func.functional_call(model, (p, buffers), (xi[None],))
        return F.cross_entropy(out, yi[None])

    grads = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))(params, x, y)
    g0 = torch.func.grad(loss)(params, x[0], y[0])
    for k in params:
        assert grads[k].shape == (3, *params[k].shape)
        assert torch.allclose(grads[k][0], g0[k], atol=1e-5)


# ---- bad input -------------------------------------------------------------------------------

def _make(name: str = "cnn", **kw: object) -> ClassifierModel:
    args: dict = {"num_classes": 10, "in_channels": 1, "image_size": (28, 28)} | kw
    return create_model(name, **args)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "resnet23"}, r"'model' must be one of .*'resnet32'.*did you mean 'resnet32'"),
    ({"head": "cosin"},
     r"'head' must be one of 'linear', 'cosine'; got 'cosin' \(did you mean 'cosine'\?\)"),
    ({"dropout": 1.5}, r"'dropout' must be in \[0.0, 1.0\); got 1.5"),
    ({"dropout": 1.0}, r"'dropout' must be in \[0.0, 1.0\); got 1.0"),
    ({"dropout": -0.1}, r"'dropout' must be in"),
    ({"num_classes": 0}, r"'num_classes' must be an integer >= 1; got 0"),
    ({"in_channels": 2.0}, r"'in_channels' must be an integer >= 1; got 2.0"),
    ({"image_size": 28}, r"'image_size' must be a pair \(H, W\) of integers >= 1; got 28"),
    ({"image_size": (28, 0)}, r"'image_size' must be a pair"),
    ({"name": "resnet32", "image_size": (4, 4)},
     r"'image_size' must be at least \(8, 8\) for model 'resnet32'.*; got \(4, 4\)"),
    ({"name": "cnn", "image_size": (7, 28)}, r"'image_size' must be at least \(8, 8\)"),
    ({"name": "resnet18", "image_size": (8, 8)}, r"at least \(16, 16\) .*; got \(8, 8\)"),
    ({"name": "mlp", "hidden": (256, 0)}, r"'hidden' must be an integer >= 1; got 0"),
    ({"name": "mlp", "hidden": ()}, r"'hidden' must be a non-empty sequence"),
    ({"name": "cnn", "width": 0}, r"'width' must be a number > 0; got 0"),
    ({"name": "cnn", "hidden": (8,)}, r"model 'cnn' takes 'width'; got unknown option\(s\) "
                                      r"'hidden'"),
    ({"name": "resnet20", "width": 2}, r"model 'resnet20' takes no options"),
    ({"head": "linear", "head_kwargs": {"scale": 2.0}}, r"head 'linear' takes no options"),
    ({"head": "cosine", "head_kwargs": {"scale": -1.0}}, r"'scale' must be a finite number > 0"),
])
def test_bad_input(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        _make(**kwargs)


def test_bad_input_elsewhere() -> None:
    with pytest.raises(InputError, match=r"'head' must be one of"):
        make_head("normed", 8, 2)
    with pytest.raises(InputError, match=r"'model' must be one of"):
        model_info("resnet")
    mlp = _make("mlp")
    with pytest.raises(InputError, match=r"'x' must have shape \(N, 1, 28, 28\).*\(2, 1, 32, "):
        mlp(torch.zeros(2, 1, 32, 32))
    # the convolutional models take other sizes at forward time (global average pool)
    assert _make("cnn")(torch.zeros(2, 1, 32, 40)).shape == (2, 10)


# ---- timing (printed, not asserted) ----------------------------------------------------------

def test_cnn_step_time() -> None:
    model = _build("cnn", "gray28").train()
    x, y = torch.randn(256, 1, 28, 28), torch.randint(0, K, (256,))

    def step(m: nn.Module, xb: torch.Tensor, bf16: bool) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(m(xb), y)
        loss.backward()

    results = {}
    for label, bf16, fmt in (("fp32", False, torch.contiguous_format),
                             ("bf16 autocast + channels_last", True, torch.channels_last)):
        m = model.to(memory_format=fmt)
        xb = x.contiguous(memory_format=fmt)
        step(m, xb, bf16)  # warm-up (oneDNN primitive creation)
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            step(m, xb, bf16)
            times.append(time.perf_counter() - t0)
        results[label] = min(times)
    print(f"\ncnn forward+backward, batch (256, 1, 28, 28), {torch.get_num_threads()} threads: "
          + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in results.items()))
