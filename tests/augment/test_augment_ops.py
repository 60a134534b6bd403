"""The pure batched ops: identity when off, seeded, per-sample parameters followed exactly."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from classgap.augment import mix, ops
from classgap.errors import InputError

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))]

# (op on images, its off value, an "on" value)
IMAGE_OPS: list[tuple[Callable[..., torch.Tensor], float, float]] = [
    (ops.random_resized_crop, 1.0, 0.08),
    (ops.pad_crop, 0, 4),
    (ops.hflip, 0.0, 0.5),
    (ops.color_jitter, 0.0, 0.4),
    (ops.cutout, 0, 8),
]
IMAGE_IDS = [op.__name__ for op, _, _ in IMAGE_OPS]
MIX_OPS = [mix.mixup, mix.cutmix]


def gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def images(n: int = 16, c: int = 3, h: int = 16, w: int = 16, *, device: str = "cpu",
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=gen(123), dtype=torch.float32).to(device, dtype)


# ------------------------------------------------------------------------ common contract
@pytest.mark.parametrize(("op", "off", "on"), IMAGE_OPS, ids=IMAGE_IDS)
@pytest.mark.parametrize("device", DEVICES)
def test_image_op_contract(op, off, on, device):
    x = images(device=device)
    # Off: the input itself, and per-sample off values are bitwise identity too.
    assert op(x, off, generator=gen(0, device)) is x
    off_vec = torch.full((16,), float(off), device=device)
    assert op(x, off_vec, generator=gen(0, device)) is x
    a = op(x, on, generator=gen(0, device))
    b = op(x, on, generator=gen(0, device))
    c = op(x, on, generator=gen(1, device))
    assert a.shape == x.shape and a.dtype == x.dtype and a.device == x.device
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, x)


@pytest.mark.parametrize(("op", "off", "on"), IMAGE_OPS, ids=IMAGE_IDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_image_op_keeps_dtype(op, off, on, dtype):
    x = images(4, dtype=dtype)
    out = op(x, on, generator=gen(0))
    assert out.dtype == dtype and out.shape == x.shape


@pytest.mark.parametrize(("op", "off", "on"), IMAGE_OPS, ids=IMAGE_IDS)
def test_image_op_per_sample_off_is_bitwise(op, off, on):
    x = images(16)
    value = torch.tensor([off, on] * 8, dtype=torch.float32)
    out = op(x, value, generator=gen(0))
    assert torch.equal(out[0::2], x[0::2])
    assert not torch.equal(out[1::2], x[1::2])


@pytest.mark.parametrize(("op", "off", "on"), IMAGE_OPS, ids=IMAGE_IDS)
def test_image_op_bad_input(op, off, on):
    with pytest.raises(InputError, match=r"'x' must be a floating tensor of shape"):
        op(torch.zeros(3, 8, 8), on, generator=gen(0))
    with pytest.raises(InputError, match=r"'x' must be a floating tensor"):
        op(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), on, generator=gen(0))
    with pytest.raises(InputError, match=r"must be a number or a tensor of shape \(4,\)"):
        op(images(4), torch.full((3,), float(on)), generator=gen(0))


@pytest.mark.parametrize("op", MIX_OPS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("device", DEVICES)
def test_mix_op_contract(op, device):
    x = images(device=device)
    t = F.one_hot(torch.arange(16, device=device) % 10, 10).float()
    xo, to = op(x, t, 0.0, generator=gen(0, device))
    assert xo is x and to is t
    a, ta = op(x, t, 1.0, generator=gen(0, device))
    b, tb = op(x, t, 1.0, generator=gen(0, device))
    c, _ = op(x, t, 1.0, generator=gen(1, device))
    assert a.shape == x.shape and a.dtype == x.dtype and ta.shape == t.shape
    assert torch.equal(a, b) and torch.equal(ta, tb)
    assert not torch.equal(a, c)
    torch.testing.assert_close(ta.sum(1), torch.ones(16, device=device))


@pytest.mark.parametrize("op", MIX_OPS, ids=lambda f: f.__name__)
def test_mix_op_bad_input(op):
    x, t = images(4), torch.eye(4)
    for alpha in (-1.0, math.inf, torch.tensor(1.0), True):
        with pytest.raises(InputError, match=r"'alpha' must be one finite number >= 0"):
            op(x, t, alpha, generator=gen(0))
    with pytest.raises(InputError, match=r"'targets' must be a floating tensor of shape \(4, K\)"):
        op(x, torch.arange(4), 1.0, generator=gen(0))


# ------------------------------------------------------------------- random resized crop
def test_full_box_is_identity_theta():
    theta = ops.crop_boxes_to_theta(torch.tensor([[0.0, 0.0, 20.0, 10.0]]), 10, 20)
    torch.testing.assert_close(theta, torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]]))


def test_box_grid_matches_affine_grid():
    boxes = ops._sample_crop_boxes(torch.full((64,), 0.08), 12, 20, (3 / 4, 4 / 3), gen(0))
    theta = ops.crop_boxes_to_theta(boxes, 12, 20)
    expected = F.affine_grid(theta, [64, 1, 12, 20], align_corners=False)
    torch.testing.assert_close(ops._box_grid(theta, 12, 20), expected, atol=1e-6, rtol=0)


def test_left_half_box_nearest_repeats_columns():
    h, w = 6, 8
    x = torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w)  # every pixel distinct
    out = ops.resample_boxes(x, torch.tensor([[0.0, 0.0, w / 2, h]]), mode="nearest")
    # Output column j samples the input at (j + 0.5) / 2 pixel edges: column j // 2.
    assert torch.equal(out, x[..., torch.arange(w) // 2])


def test_integer_box_at_2x_nearest_gives_known_pixels():
    x = torch.arange(64, dtype=torch.float32).view(1, 1, 8, 8)
    out = ops.resample_boxes(x, torch.tensor([[2.0, 4.0, 6.0, 8.0]]), mode="nearest")
    rows, cols = 4 + torch.arange(8) // 2, 2 + torch.arange(8) // 2
    assert torch.equal(out[0, 0], x[0, 0][rows[:, None], cols[None, :]])


def test_bilinear_box_on_linear_gradient_is_exact():
    h = w = 16
    i, j = torch.meshgrid(torch.arange(float(h)), torch.arange(float(w)), indexing="ij")
    x = (0.02 * i + 0.03 * j)[None, None].double()  # bilinear is exact on linear images
    out = ops.resample_boxes(x, torch.tensor([[1.0, 2.0, 9.0, 10.0]]))
    # Output pixel k samples the input pixel-centre coordinate x0 + (k + 0.5) * 0.5 - 0.5.
    k = torch.arange(16, dtype=torch.float64)
    src_j, src_i = 1 + (k + 0.5) / 2 - 0.5, 2 + (k + 0.5) / 2 - 0.5
    expected = 0.02 * src_i[:, None] + 0.03 * src_j[None, :]
    torch.testing.assert_close(out[0, 0], expected, atol=1e-6, rtol=0)


def test_crop_boxes_follow_the_distribution():
    n, h, w, s = 4000, 28, 28, 0.08
    boxes = ops._sample_crop_boxes(torch.full((n,), s), h, w, (3 / 4, 4 / 3), gen(0))
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    eps = 1e-4
    assert (boxes[:, :2] >= -eps).all() and (boxes[:, 2] <= w + eps).all()
    assert (boxes[:, 3] <= h + eps).all()
    area = bw * bh / (h * w)
    assert (area >= s - eps).all() and (area <= 1 + eps).all()
    ratio = bw / bh
    assert (ratio >= 3 / 4 - eps).all() and (ratio <= 4 / 3 + eps).all()
    # Area ~ U(0.08, 1) conditioned on fitting: the mean sits a little below 0.54.
    assert 0.45 < float(area.mean()) < 0.56


# -------------------------------------------------------------------------- pad and crop
def test_translate_moves_by_exact_offset():
    x = images(2, 2, 9, 11)
    dx, dy = torch.tensor([2, -3]), torch.tensor([-1, 4])
    out = ops._translate(x, dx, dy, 4)
    for n in range(2):  # reference: zero-pad by 4 and take the shifted window
        padded = F.pad(x[n], (4, 4, 4, 4))
        top, left = 4 - int(dy[n]), 4 - int(dx[n])
        assert torch.equal(out[n], padded[:, top:top + 9, left:left + 11])


def test_pad_crop_offsets_stay_within_padding():
    x = torch.zeros(500, 1, 12, 12)
    x[:, :, 6, 6] = 1.0  # one bright pixel
    out = ops.pad_crop(x, 2, generator=gen(0))
    pos = out.view(500, -1).argmax(1)
    dy, dx = pos // 12 - 6, pos % 12 - 6
    assert torch.equal(out.sum((1, 2, 3)), torch.ones(500))  # moved, never lost
    assert set(dx.tolist()) == set(range(-2, 3)) == set(dy.tolist())


# --------------------------------------------------------------------------------- flip
def test_hflip_p1_is_flip():
    x = images()
    assert torch.equal(ops.hflip(x, 1.0, generator=gen(0)), x.flip(-1))


# ------------------------------------------------------------------------------ jitter
def test_jitter_brightness_multiplies():
    x = images(4, 3) * 0.5
    b = torch.tensor([0.5, 1.0, 1.5, 1.9])
    one, zero = torch.ones(4), torch.zeros(4)
    expected = (x * b.view(-1, 1, 1, 1)).clamp(0, 1)
    torch.testing.assert_close(ops._jitter(x, b, one, one, zero), expected, atol=1e-6, rtol=0)
    g1 = images(4, 1)
    assert torch.equal(ops._jitter(g1, b, one, one, zero), (g1 * b.view(-1, 1, 1, 1)).clamp(0, 1))


def test_jitter_contrast_zero_gives_mean_gray_and_saturation_zero_gray():
    x = images(2, 3)
    one, zero = torch.ones(2), torch.zeros(2)
    flat = ops._jitter(x, one, zero, one, zero)
    gray_mean = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).mean((1, 2))
    torch.testing.assert_close(flat, gray_mean.view(2, 1, 1, 1).expand_as(x), atol=1e-6, rtol=0)
    gray = ops._jitter(x, one, one, zero, zero)
    torch.testing.assert_close(gray[:, 0], gray[:, 1], atol=1e-6, rtol=0)
    torch.testing.assert_close(gray[:, 1], gray[:, 2], atol=1e-6, rtol=0)


def test_jitter_hue_keeps_grays_and_luma():
    one = torch.ones(3)
    gray = torch.rand(3, 1, 4, 4, generator=gen(0)).expand(3, 3, 4, 4) * 0.5 + 0.25
    out = ops._jitter(gray, one, one, one, torch.tensor([0.1, 0.25, -0.3]))
    torch.testing.assert_close(out, gray, atol=1e-6, rtol=0)
    color = images(3, 3) * 0.2 + 0.4  # away from the clamp
    turned = ops._jitter(color, one, one, one, torch.tensor([0.1, 0.25, -0.3]))
    assert not torch.allclose(turned, color, atol=1e-3)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    torch.testing.assert_close((turned * luma).sum(1), (color * luma).sum(1), atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------ cutout
@pytest.mark.parametrize("size", [1, 4, 5])
def test_cutout_zeroes_size_squared_pixels_inside(size):
    x = torch.ones(1, 3, 16, 16)
    out = ops._cutout(x, torch.tensor([size]), torch.tensor([8]), torch.tensor([7]))
    zero = out[0, 0] == 0
    assert int(zero.sum()) == size * size
    assert (out == 0).sum() == 3 * size * size  # every channel
    rows, cols = zero.nonzero().unbind(1)
    assert int(rows.min()) == 8 - size // 2 and int(cols.min()) == 7 - size // 2


def test_cutout_is_clipped_at_the_border():
    out = ops._cutout(torch.ones(1, 1, 8, 8), torch.tensor([4]), torch.tensor([0]),
                      torch.tensor([7]))
    assert int((out == 0).sum()) == 2 * 3  # rows 0..1, columns 5..7


# ------------------------------------------------------------------------------ mixing
def test_mixup_is_the_drawn_convex_combination():
    x, t = images(8), F.one_hot(torch.arange(8), 8).float()
    lam, perm = mix._mix_params(8, 0.4, gen(5), x.device)  # the draws mixup makes
    xo, to = mix.mixup(x, t, 0.4, generator=gen(5))
    lx = lam.view(-1, 1, 1, 1)
    torch.testing.assert_close(xo, lx * x + (1 - lx) * x[perm])
    torch.testing.assert_close(to, lam[:, None] * t + (1 - lam[:, None]) * t[perm])
    torch.testing.assert_close(to.sum(1), torch.ones(8))
    assert sorted(perm.tolist()) == list(range(8))


@pytest.mark.parametrize("alpha", [0.2, 1.0, 2.0])
def test_beta_draws_have_beta_moments(alpha):
    lam, _ = mix._mix_params(20000, alpha, gen(0), torch.device("cpu"))
    assert (lam >= 0).all() and (lam <= 1).all()
    assert abs(float(lam.mean()) - 0.5) < 0.01
    assert abs(float(lam.var()) - 1 / (4 * (2 * alpha + 1))) < 0.01


def test_beta_draws_never_nan_for_tiny_alpha():
    lam, _ = mix._mix_params(1000, 1e-4, gen(0), torch.device("cpu"))
    assert torch.isfinite(lam).all()


def test_cutmix_lambda_is_the_exact_unpasted_area():
    n, h, w = 12, 10, 14
    x = torch.arange(1, n + 1, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 2, h, w)
    t = F.one_hot(torch.arange(n), n).float()
    xo, to = mix.cutmix(x, t, 1.0, generator=gen(3))
    for i in range(n):
        own = xo[i] == i + 1
        partner = [j for j in range(n) if j != i and to[i, j] > 0]
        if partner:  # the unpasted fraction is exactly the weight of the own class
            assert math.isclose(float(own.float().mean()), float(to[i, i]), abs_tol=1e-6)
            assert torch.equal(xo[i][~own], torch.full_like(xo[i][~own], partner[0] + 1))
        torch.testing.assert_close(to[i].sum(), torch.tensor(1.0))


def test_paste_with_explicit_box():
    x = torch.stack([torch.zeros(1, 6, 6), torch.ones(1, 6, 6)])
    t = torch.eye(2)
    box = (torch.tensor([1, 0]), torch.tensor([4, 6]), torch.tensor([2, 0]),
           torch.tensor([4, 3]))  # y0, y1, x0, x1
    xo, to, lam = mix._paste(x, t, box, torch.tensor([1, 0]))
    assert int(xo[0].sum()) == 3 * 2 and math.isclose(float(lam[0]), 1 - 6 / 36, abs_tol=1e-6)
    assert int((xo[1] == 0).sum()) == 6 * 3 and math.isclose(float(lam[1]), 0.5, abs_tol=1e-6)
    torch.testing.assert_close(to[0], torch.tensor([1 - 6 / 36, 6 / 36]))
