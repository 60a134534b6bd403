"""The knob registry, spec parsing and AugmentPipeline, parametrized over every knob."""

from __future__ import annotations

import json
import time

import pytest
import torch

from classgap.augment import AUGMENTATIONS, ORDER, AugmentPipeline, list_augs, parse_aug
from classgap.errors import ClassgapError, DataFormatError, InputError

K = 10
KNOBS = list(ORDER)
IMAGE_KNOBS = [k for k in ORDER if not AUGMENTATIONS.get(k).mixes]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))]


def gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def batch(n: int = 20, c: int = 3, hw: int = 16,
          device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    g = gen(99)
    return (torch.rand(n, c, hw, hw, generator=g).to(device),
            (torch.arange(n) % K).to(device))


# ------------------------------------------------------------------------------ registry
def test_registry_and_listing():
    assert sorted(KNOBS) == AUGMENTATIONS.list()
    rows = list_augs()
    assert [r["name"] for r in rows] == KNOBS
    assert all(set(r) == {"name", "unit", "off", "range", "description"} for r in rows)
    by_name = {r["name"]: r for r in rows}
    assert by_name["rrc"]["off"] == 1.0 and by_name["rrc"]["range"] == "(0, 1]"
    assert by_name["flip"]["range"] == "[0, 1]" and by_name["mixup"]["range"] == "[0, inf)"


# -------------------------------------------------------------------- common contract
@pytest.mark.parametrize("name", KNOBS)
@pytest.mark.parametrize("device", DEVICES)
def test_off_value_is_bitwise_identity(name, device):
    x, y = batch(device=device)
    pipe = AugmentPipeline({name: AUGMENTATIONS.get(name).off}, K)
    assert pipe.is_identity and not pipe.mixes
    xo, yo = pipe(x, y, generator=gen(0, device))
    assert xo is x and yo is y and yo.dtype == torch.int64


def test_empty_pipeline_is_identity():
    x, y = batch()
    pipe = AugmentPipeline({}, K)
    xo, yo = pipe(x, y, generator=gen(0))
    assert pipe.is_identity and xo is x and yo is y
    assert pipe.describe() == "none (identity)"
    off = AugmentPipeline({n: AUGMENTATIONS.get(n).off for n in KNOBS}, K)
    xo, yo = off(x, y, generator=gen(0))
    assert torch.equal(xo, x) and torch.equal(yo, y)


@pytest.mark.parametrize("name", KNOBS)
@pytest.mark.parametrize("device", DEVICES)
def test_on_value_is_seeded_and_keeps_shape(name, device):
    x, y = batch(device=device)
    knob = AUGMENTATIONS.get(name)
    pipe = AugmentPipeline({name: knob.typical}, K)
    assert not pipe.is_identity
    a, ta = pipe(x, y, generator=gen(0, device))
    b, tb = pipe(x, y, generator=gen(0, device))
    c, _ = pipe(x, y, generator=gen(1, device))
    assert a.shape == x.shape and a.dtype == x.dtype and a.device == x.device
    assert torch.equal(a, b) and torch.equal(ta, tb)
    assert not torch.equal(a, c) and not torch.equal(a, x)
    if knob.mixes:
        assert ta.shape == (20, K) and ta.dtype == torch.float32
        torch.testing.assert_close(ta.sum(1), torch.ones(20, device=device))
    else:
        assert ta is y


@pytest.mark.parametrize("name", IMAGE_KNOBS)
@pytest.mark.parametrize("device", DEVICES)
def test_per_class_off_classes_are_untouched(name, device):
    knob = AUGMENTATIONS.get(name)
    strong = 1.0 if name == "flip" else knob.typical
    table = [knob.off if k % 2 == 0 else strong for k in range(K)]
    x, y = batch(40, device=device)
    pipe = AugmentPipeline({name: table}, K)
    xo, yo = pipe(x, y, generator=gen(0, device))
    even = y % 2 == 0
    assert torch.equal(xo[even], x[even])
    changed = (xo[~even] != x[~even]).flatten(1).any(1)
    assert bool(changed.any())
    if name in ("flip", "rrc", "cutout", "jitter"):
        assert bool(changed.all())
    assert yo is y


def test_uniform_per_class_vector_acts_like_a_scalar():
    x, y = batch()
    a, _ = AugmentPipeline({"rrc": [0.3] * K}, K)(x, y, generator=gen(0))
    b, _ = AugmentPipeline({"rrc": 0.3}, K)(x, y, generator=gen(0))
    assert torch.equal(a, b)


def test_uint8_input_is_scaled():
    x = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8, generator=gen(0))
    xo, _ = AugmentPipeline({}, K)(x, torch.arange(4), generator=gen(0))
    assert xo.dtype == torch.float32 and torch.equal(xo, x.float() / 255)


def test_mixup_and_cutmix_together():
    x, y = batch()
    pipe = AugmentPipeline({"mixup": 1.0, "cutmix": 1.0, "flip": 0.5}, K)
    for seed in range(4):
        xo, t = pipe(x, y, generator=gen(seed))
        assert xo.shape == x.shape and t.shape == (20, K)
        torch.testing.assert_close(t.sum(1), torch.ones(20))


# ----------------------------------------------------------------------- config round trip
def test_to_dict_describe_and_rebuild():
    table = [0.08] * 5 + [1.0] * 5
    pipe = AugmentPipeline({"rrc": table, "flip": 0.5, "crop": 4, "mixup": 0.2}, K)
    d = pipe.to_dict()
    assert list(d) == KNOBS and d["rrc"] == table and d["crop"] == 4 and d["cutout"] == 0
    assert json.loads(json.dumps(d)) == d
    assert AugmentPipeline(d, K).to_dict() == d
    assert pipe.describe() == "rrc=per-class[0.08..1], crop=4, flip=0.5, mixup=0.2"
    assert "num_classes=10" in repr(pipe)


def test_from_strings():
    pipe = AugmentPipeline.from_strings(["rrc=0.08", "flip=0.5"], K)
    assert pipe.describe() == "rrc=0.08, flip=0.5"
    with pytest.raises(InputError, match=r"'aug' must name each knob once"):
        AugmentPipeline.from_strings(["rrc=0.08", "rrc=0.5"], K)


# ----------------------------------------------------------------------------- parse_aug
def test_parse_scalar_and_vector():
    assert parse_aug("rrc=0.5") == ("rrc", 0.5)
    assert parse_aug(" flip = 1 ") == ("flip", 1.0)
    assert parse_aug("crop=4") == ("crop", 4) and isinstance(parse_aug("crop=4.0")[1], int)
    assert parse_aug("rrc=[0.08, 0.08, 1.0]", num_classes=3) == ("rrc", (0.08, 0.08, 1.0))


def test_parse_json_files(tmp_path):
    names = ["cat", "dog", "bird"]
    (tmp_path / "l.json").write_text("[0.08, 1.0, 0.5]")
    (tmp_path / "o.json").write_text('{"*": 0.08, "dog": 1.0, "2": 0.5}')
    (tmp_path / "d.json").write_text('{"cat": 0.08, "dgo": 1.0, "*": 0.5}')
    (tmp_path / "m.json").write_text('{"cat": 0.08}')
    (tmp_path / "bad.json").write_text("{nope")
    assert parse_aug(f"rrc=@{tmp_path / 'l.json'}") == ("rrc", (0.08, 1.0, 0.5))
    assert parse_aug(f"rrc=@{tmp_path / 'o.json'}", class_names=names) == ("rrc",
                                                                          (0.08, 1.0, 0.5))
    with pytest.raises(InputError, match=r"did you mean 'dog'\?"):
        parse_aug(f"rrc=@{tmp_path / 'd.json'}", class_names=names)
    with pytest.raises(InputError, match=r"must give a value for every class or a '\*' "
                                         r"default; got no value for \['dog', 'bird'\]"):
        parse_aug(f"rrc=@{tmp_path / 'm.json'}", class_names=names)
    with pytest.raises(InputError, match=r"must be a JSON list when the class names"):
        parse_aug(f"rrc=@{tmp_path / 'o.json'}")
    with pytest.raises(DataFormatError, match=r"bad.json: not valid JSON for 'aug.rrc'"):
        parse_aug(f"rrc=@{tmp_path / 'bad.json'}")
    with pytest.raises(DataFormatError, match=r"'aug.rrc' must name a readable JSON file"):
        parse_aug(f"rrc=@{tmp_path / 'missing.json'}")
    with pytest.raises(InputError, match=r"\(3 values\); got 2 values"):
        parse_aug("rrc=[0.5, 0.5]", class_names=names)


@pytest.mark.parametrize(("spec", "message"), [
    ("rrc", r"^'aug' must look like NAME=VALUE; got 'rrc'$"),
    ("rcc=0.5", r"^'aug' must be one of .*; got 'rcc' \(did you mean 'rrc'\?\)$"),
    ("rrc=1.5", r"^'aug.rrc' must be in \(0, 1\]; got 1.5$"),
    ("rrc=0", r"^'aug.rrc' must be in \(0, 1\]; got 0.0$"),
    ("flip=-0.1", r"^'aug.flip' must be in \[0, 1\]; got -0.1$"),
    ("crop=2.5", r"^'aug.crop' must be a whole number >= 0; got 2.5$"),
    ("mixup=inf", r"^'aug.mixup' must be a finite number >= 0; got inf$"),
    ("jitter=nan", r"^'aug.jitter' must be in \[0, 1\]; got nan$"),
    ("rrc=", r"^'aug.rrc' must be a number, a list \[v1, v2, ...\] or @file.json; got ''$"),
    ("rrc=big", r"^'aug.rrc' must be a number, .*; got 'big'$"),
    ("rrc=[0.1,", r"^'aug.rrc' must be a number, .*; got '\[0.1,'$"),
    ("rrc=[0.1, 2]", r"^'aug.rrc\[1\]' must be in \(0, 1\]; got 2$"),
    ("rrc=[0.1, \"a\"]", r"^'aug.rrc\[1\]' must be a number; got 'a'$"),
    ("mixup=[1, 1]", r"^'aug.mixup' must be one number \(a per-class alpha is not supported"),
])
def test_parse_errors(spec, message):
    with pytest.raises(InputError, match=message) as info:
        parse_aug(spec)
    assert isinstance(info.value, ClassgapError)


# ------------------------------------------------------------------------ pipeline errors
@pytest.mark.parametrize(("spec", "k", "message"), [
    ({"rcc": 0.5}, K, r"'aug' must be one of .*did you mean 'rrc'"),
    ({"rrc": [0.5] * 3}, K, r"'aug.rrc' must be one number or one per class \(10 values\); "
                            r"got 3 values"),
    ({"cutmix": [1.0] * K}, K, r"'aug.cutmix' must be one number \(a per-class alpha"),
    ({"cutout": -1}, K, r"'aug.cutout' must be a whole number >= 0; got -1$"),
    ({"flip": True}, K, r"'aug.flip' must be a number; got True"),
    ({"flip": 0.5}, 0, r"'num_classes' must be an integer >= 1; got 0"),
    ([("flip", 0.5)], K, r"'spec' must be a mapping"),
])
def test_pipeline_spec_errors(spec, k, message):
    with pytest.raises(InputError, match=message):
        AugmentPipeline(spec, k)


def test_pipeline_batch_errors():
    pipe = AugmentPipeline({"flip": 0.5}, K)
    x, y = batch(4)
    with pytest.raises(InputError, match=r"'x' must be a float \(in \[0, 1\]\) or uint8"):
        pipe(x[0], y, generator=gen(0))
    with pytest.raises(InputError, match=r"'labels' must be an integer tensor of shape \(4,\)"):
        pipe(x, y.float(), generator=gen(0))
    with pytest.raises(InputError, match=r"'labels' must hold class indices in \[0, 9\]; "
                                         r"got 12 at row 2"):
        pipe(x, torch.tensor([0, 1, 12, 3]), generator=gen(0))
    with pytest.raises(InputError, match=r"'generator' must be a torch.Generator"):
        pipe(x, y, generator=0)


# -------------------------------------------------------------------------------- timing
def test_print_timing():
    """Not an assertion: how long rrc + flip takes on a (256, 1, 28, 28) batch here."""
    pipe = AugmentPipeline({"rrc": 0.08, "flip": 0.5}, K)
    g = gen(0)
    x, y = torch.rand(256, 1, 28, 28, generator=g), torch.randint(0, K, (256,), generator=g)
    pipe(x, y, generator=g)  # warm-up
    times: list[float] = []
    deadline = time.perf_counter() + 1.0  # bounded: a loaded machine must not slow the suite
    while len(times) < 30 and time.perf_counter() < deadline:
        start = time.perf_counter()
        pipe(x, y, generator=g, validate=False)
        times.append(time.perf_counter() - start)
    times.sort()
    print(f"\nrrc=0.08 + flip=0.5 on (256, 1, 28, 28) float32, CPU, "
          f"{torch.get_num_threads()} threads: min {times[0] * 1e3:.2f} ms, "
          f"median {times[len(times) // 2] * 1e3:.2f} ms per batch ({len(times)} runs)")
