"""Batched image augmentations as pure tensor functions.

Every op takes images ``x`` (N, C, H, W) floating in [0, 1] on any device, a per-sample
strength ``value`` (a number, or a tensor of shape (N,) so that class-conditional augmentation
is just ``value = table[labels]``) and a ``torch.Generator`` on the images' device. All
per-sample random parameters are drawn in one generator call per op, so a seed gives identical
output, and there is no Python loop over samples and no host round trip in the hot path.

A sample whose strength is the op's *off* value is returned bitwise unchanged; when every sample
is off the op returns ``x`` itself (not a copy). With a tensor ``value`` that check reads one
boolean back from the device (one sync per op call).

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> x = torch.rand(4, 3, 8, 8, generator=g)
>>> hflip(x, 1.0, generator=g).equal(x.flip(-1))
True
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from classgap._validation import fail

__all__ = [
    "HUE_TURNS_PER_MAGNITUDE",
    "color_jitter",
    "crop_boxes_to_theta",
    "cutout",
    "hflip",
    "pad_crop",
    "random_resized_crop",
    "resample_boxes",
]

Value = float | Tensor
"""A strength: one number for the batch, or a (N,) tensor with one per sample."""

#: Hue shift of :func:`color_jitter`, in turns of the colour wheel per unit of magnitude: the
#: shift is U(-m/2, m/2) * 0.5 turns, so m = 0.4 gives +-0.1 turns, the customary
#: ``ColorJitter(0.4, 0.4, 0.4, 0.1)`` setting, with one magnitude for all four factors.
HUE_TURNS_PER_MAGNITUDE = 0.5

# RGB -> YIQ (NTSC 1953). Hue is rotated in the I-Q plane: a linear, branch-free stand-in for
# the HSV hue shift of torchvision (equal at the grey axis, close elsewhere).
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                            [0.595716, -0.274453, -0.321263],
                            [0.211456, -0.522591, 0.311135]], dtype=torch.float64)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)
_GRAY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as torchvision's rgb_to_grayscale


# ---------------------------------------------------------------------------------- helpers
def _check_images(x: Tensor, generator: torch.Generator | None = None) -> None:
    """Metadata-only checks (no device sync): 4-D floating images, generator on their device."""
    if not isinstance(x, Tensor) or x.ndim != 4 or not x.is_floating_point():
        desc = (f"shape {tuple(x.shape)} dtype {x.dtype}" if isinstance(x, Tensor)
                else type(x).__name__)
        raise fail("x", "be a floating tensor of shape (N, C, H, W)", desc)
    if generator is not None and generator.device.type != x.device.type:
        raise fail("generator", f"be on the images' device ({x.device.type})",
                   f"a generator on {generator.device.type}")


def _per_sample(value: Value, n: int, device: torch.device, name: str) -> Tensor:
    """``value`` as a float32 (N,) tensor on ``device``."""
    if isinstance(value, Tensor):
        if value.shape != (n,):
            raise fail(name, f"be a number or a tensor of shape ({n},)",
                       f"shape {tuple(value.shape)}")
        return value.to(device=device, dtype=torch.float32)
    return torch.full((n,), float(value), device=device)


def _all_off(value: Value, off: float) -> bool:
    """True when every sample's strength is the off value (one sync for a tensor)."""
    if isinstance(value, Tensor):
        return bool((value == off).all())
    return float(value) == off


def _work_dtype(x: Tensor) -> torch.dtype:
    # Half precision would quantise sampling grids and blend factors; compute in float32.
    return x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32


def _keep_where(off: Tensor, x: Tensor, out: Tensor) -> Tensor:
    """``out`` per sample, except ``x`` itself (bitwise) where ``off`` is True. off: (N,)."""
    return torch.where(off.view(-1, 1, 1, 1), x, out.to(x.dtype))


# ---------------------------------------------------------------------- random resized crop
def crop_boxes_to_theta(boxes: Tensor, height: int, width: int) -> Tensor:
    """Affine matrices that make ``F.affine_grid`` sample the given boxes.

    Parameters
    ----------
    boxes : Tensor
        (N, 4) ``(x0, y0, x1, y1)`` in pixel-edge coordinates: the image spans [0, W] x [0, H]
        and pixel ``j`` covers [j, j + 1).
    height, width : int
        Input image size H, W.

    Returns
    -------
    Tensor
        (N, 2, 3) for ``F.affine_grid(..., align_corners=False)``, whose normalised -1 and +1
        are the image's outer edges; an output edge maps to the box edge.
    """
    x0, y0, x1, y1 = boxes.unbind(-1)  # each (N,)
    theta = boxes.new_zeros(boxes.shape[0], 2, 3)
    theta[:, 0, 0] = (x1 - x0) / width
    theta[:, 0, 2] = (x0 + x1) / width - 1
    theta[:, 1, 1] = (y1 - y0) / height
    theta[:, 1, 2] = (y0 + y1) / height - 1
    return theta


def resample_boxes(x: Tensor, boxes: Tensor, *, mode: str = "bilinear") -> Tensor:
    """Crop every image to its box and resize it back to H x W, in one grid_sample call.

    Parameters
    ----------
    x : Tensor
        (N, C, H, W) floating images.
    boxes : Tensor
        (N, 4) ``(x0, y0, x1, y1)`` pixel-edge coordinates (see :func:`crop_boxes_to_theta`).
    mode : {"bilinear", "nearest"}
        Interpolation. Outside samples take the edge value (``padding_mode="border"``), as
        resizing a crop does.

    Returns
    -------
    Tensor
        (N, C, H, W), the dtype of ``x``.
    """
    _, _, h, w = x.shape
    dtype = _work_dtype(x)
    grid = _box_grid(crop_boxes_to_theta(boxes.to(dtype), h, w), h, w)  # (N, H, W, 2)
    out = F.grid_sample(x.to(dtype), grid, mode=mode, padding_mode="border",
                        align_corners=False)
    return out.to(x.dtype)


def _box_grid(theta: Tensor, height: int, width: int) -> Tensor:
    """``F.affine_grid(theta, (N, C, H, W), align_corners=False)`` for axis-aligned theta.

    A box has no rotation or shear, so the grid is separable: x depends on the column only,
    y on the row only. Building it by broadcasting gives the same values (to 1 ulp) about 8x
    faster than affine_grid's (N, H*W, 3) x (N, 3, 2) product on CPU. theta: (N, 2, 3).
    """
    n = theta.shape[0]
    # Pixel centres in normalised coordinates with align_corners=False: (2i + 1) / W - 1.
    bx = (torch.arange(width, device=theta.device, dtype=theta.dtype) * 2 + 1) / width - 1
    by = (torch.arange(height, device=theta.device, dtype=theta.dtype) * 2 + 1) / height - 1
    gx = theta[:, 0, 0, None] * bx + theta[:, 0, 2, None]  # (N, W)
    gy = theta[:, 1, 1, None] * by + theta[:, 1, 2, None]  # (N, H)
    return torch.stack([gx[:, None, :].expand(n, height, width),
                        gy[:, :, None].expand(n, height, width)], dim=-1)


def _sample_crop_boxes(scale_min: Tensor, height: int, width: int,
                       ratio: tuple[float, float], generator: torch.Generator,
                       tries: int = 10) -> Tensor:
    """Draw torchvision-style random-resized-crop boxes, (N,) scale_min -> (N, 4) boxes.

    Like torchvision, ``tries`` (area, aspect) candidates are drawn per sample and the first
    whose box fits is taken; a sample with none falls back to the largest centred box with
    the aspect ratio clamped to ``ratio``. Unlike torchvision, boxes are continuous (no
    rounding to whole pixels); bilinear resampling handles fractional edges.
    """
    n, device = scale_min.shape[0], scale_min.device
    u = torch.rand(n, 2 * tries + 2, generator=generator, device=device)  # one draw per op
    s = scale_min[:, None]
    area = s + (1 - s) * u[:, :tries]  # (N, T) fraction of the image area
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * u[:, tries:2 * tries])  # (N, T) w/h
    # Box sides as fractions of the image sides: w_px * h_px = area * H * W, w_px / h_px = r.
    fw = torch.sqrt(area * aspect * height / width)
    fh = torch.sqrt(area / aspect * width / height)
    fits = (fw <= 1) & (fh <= 1)
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # first fitting try, (N, 1)
    any_fit = fits.any(dim=1)
    in_ratio = width / height
    fb_w = min(1.0, ratio[1] / in_ratio)  # fallback: whole image, ratio clamped
    fb_h = min(1.0, in_ratio / ratio[0])
    fw = torch.where(any_fit, fw.gather(1, first)[:, 0], fb_w)
    fh = torch.where(any_fit, fh.gather(1, first)[:, 0], fb_h)
    # Centre uniform over the positions where the box fits; centred for the fallback.
    cx = torch.where(any_fit, fw / 2 + (1 - fw) * u[:, 2 * tries], 0.5)
    cy = torch.where(any_fit, fh / 2 + (1 - fh) * u[:, 2 * tries + 1], 0.5)
    return torch.stack([(cx - fw / 2) * width, (cy - fh / 2) * height,
                        (cx + fw / 2) * width, (cy + fh / 2) * height], dim=1)


def random_resized_crop(x: Tensor, scale_min: Value, *,
                        ratio: tuple[float, float] = (3 / 4, 4 / 3), mode: str = "bilinear",
                        generator: torch.Generator) -> Tensor:
    """Random-resized crop: a random box of the image, resized back to H x W.

    Per sample the area fraction is U(scale_min, 1), the log aspect ratio U(log r0, log r1),
    and the box centre uniform over the positions where the box fits (torchvision's
    ``RandomResizedCrop(scale=(scale_min, 1), ratio=ratio)`` with continuous boxes).

    Parameters
    ----------
    x : Tensor
        (N, C, H, W) floating images in [0, 1].
    scale_min : float or Tensor
        Lower bound of the area fraction, in (0, 1], or (N,) per sample; 1.0 is off.
    ratio : (float, float)
        Range of the aspect ratio width / height.
    mode : {"bilinear", "nearest"}
        Interpolation of the resize.
    generator : torch.Generator
        On the device of ``x``.

    Returns
    -------
    Tensor
        (N, C, H, W), the dtype of ``x``; samples with ``scale_min == 1`` are ``x`` bitwise.
    """
    _check_images(x, generator)
    if _all_off(scale_min, 1.0):
        return x
    n, _, h, w = x.shape
    s = _per_sample(scale_min, n, x.device, "scale_min")
    boxes = _sample_crop_boxes(s, h, w, ratio, generator)  # (N, 4)
    out = resample_boxes(x, boxes, mode=mode)
    # Only a per-sample value can hold some off samples; a scalar here is on for all.
    return _keep_where(s == 1.0, x, out) if isinstance(scale_min, Tensor) else out


# ------------------------------------------------------------------------- pad and crop
def _translate(x: Tensor, dx: Tensor, dy: Tensor, pad: int) -> Tensor:
    """Shift each image by integer (dx, dy) pixels (right, down), filling with zeros.

    ``out[n, :, i, j] = x[n, :, i - dy[n], j - dx[n]]`` or 0 outside: zero-pad by ``pad``
    (>= every |offset|) and gather each sample's H x W window of the padded image. One pad
    and one gather: twice as fast as gathering from ``x`` through clamped indices and masking
    the outside (0.6 against 1.3 ms a batch of 128 28 x 28 images, bench/RESULTS.md), with the
    same values. dx, dy: (N,) int64.
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))  # (N, C, H + 2 pad, W + 2 pad)
    width = w + 2 * pad
    window = (torch.arange(h, device=x.device)[:, None] * width
              + torch.arange(w, device=x.device)[None, :]).reshape(-1)  # (H*W,) at (0, 0)
    corner = (pad - dy) * width + (pad - dx)  # (N,) each window's top-left in `padded`
    index = (corner[:, None] + window)[:, None].expand(n, c, h * w)
    return padded.reshape(n, c, -1).gather(2, index).view(n, c, h, w)


def pad_crop(x: Tensor, padding: Value, *, generator: torch.Generator) -> Tensor:
    """Zero-pad by ``padding`` pixels and take a random H x W crop (a random translation).

    Per sample the horizontal and vertical offsets are uniform integers in [-p, p].

    Parameters
    ----------
    x : Tensor
        (N, C, H, W) floating images.
    padding : float or Tensor
        Whole number of pixels p >= 0, or (N,) per sample; 0 is off.
    generator : torch.Generator
        On the device of ``x``.

    Returns
    -------
    Tensor
        (N, C, H, W); samples with ``padding == 0`` are ``x`` bitwise.
    """
    _check_images(x, generator)
    if _all_off(padding, 0.0):
        return x
    n = x.shape[0]
    p = _per_sample(padding, n, x.device, "padding").floor()[:, None]  # (N, 1)
    # The largest padding sizes the zero border: from the number, or a host read per batch.
    pad = int(p.max()) if isinstance(padding, Tensor) else math.floor(float(padding))
    u = torch.rand(n, 2, generator=generator, device=x.device)
    # floor(u * (2p + 1)) is uniform on {0, ..., 2p} since u < 1; p = 0 gives offset 0.
    offset = ((u * (2 * p + 1)).floor() - p).to(torch.int64)  # (N, 2)
    return _translate(x, offset[:, 0], offset[:, 1], pad)


# ------------------------------------------------------------------------------- flip
def hflip(x: Tensor, p: Value, *, generator: torch.Generator) -> Tensor:
    """Flip each image left-right with probability ``p`` (a number or (N,) per sample).

    Returns (N, C, H, W); ``p = 0`` is off.
    """
    _check_images(x, generator)
    if _all_off(p, 0.0):
        return x
    n = x.shape[0]
    prob = _per_sample(p, n, x.device, "p")
    flip = torch.rand(n, generator=generator, device=x.device) < prob  # never for p = 0
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


# ------------------------------------------------------------------------------ colour
def _blend(a: Tensor, b: Tensor, factor: Tensor) -> Tensor:
    """``factor * a + (1 - factor) * b`` clamped to [0, 1], as torchvision's adjust_*."""
    return (factor * a + (1 - factor) * b).clamp_(0, 1)


def _gray(x: Tensor) -> Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) luma."""
    r, g, b = x.unbind(1)
    return (_GRAY[0] * r + _GRAY[1] * g + _GRAY[2] * b)[:, None]


def _jitter(x: Tensor, brightness: Tensor, contrast: Tensor, saturation: Tensor,
            hue: Tensor) -> Tensor:
    """Colour jitter with explicit per-sample factors, each (N,).

    Applied in the fixed order brightness, contrast, saturation, hue (torchvision draws a
    random order per call), clamping to [0, 1] after each. Saturation and hue (in turns) only
    apply to 3-channel images; other channel counts get brightness and contrast only.
    """
    col = (-1, 1, 1, 1)
    out = (x * brightness.view(col)).clamp_(0, 1)
    gray_mean = (_gray(out) if x.shape[1] == 3 else out).mean(dim=(1, 2, 3), keepdim=True)
    out = _blend(out, gray_mean, contrast.view(col))
    if x.shape[1] == 3:
        out = _blend(out, _gray(out), saturation.view(col))
        # Per-sample RGB -> YIQ -> rotate (I, Q) -> RGB as one (N, 3, 3) matrix, in float64
        # so that a zero shift is the identity to ~1e-7.
        angle = 2 * math.pi * hue.to(torch.float64)
        cos, sin = torch.cos(angle), torch.sin(angle)
        rot = torch.zeros(x.shape[0], 3, 3, dtype=torch.float64, device=x.device)
        rot[:, 0, 0] = 1
        rot[:, 1, 1], rot[:, 1, 2] = cos, -sin
        rot[:, 2, 1], rot[:, 2, 2] = sin, cos
        to_yiq = _RGB_TO_YIQ.to(x.device)
        mat = (_YIQ_TO_RGB.to(x.device) @ rot @ to_yiq).to(out.dtype)  # (N, 3, 3)
        out = torch.einsum("nij,njhw->nihw", mat, out).clamp_(0, 1)
    return out


def color_jitter(x: Tensor, magnitude: Value, *, generator: torch.Generator) -> Tensor:
    """Random brightness, contrast, saturation and hue with one magnitude m.

    Per sample: brightness factor U(1-m, 1+m) (multiply), contrast factor U(1-m, 1+m) (blend
    with the image's mean grey), and for C == 3 saturation U(1-m, 1+m) (blend with its
    greyscale) and a hue shift of U(-m/2, m/2) * :data:`HUE_TURNS_PER_MAGNITUDE` turns
    (a rotation of the chroma plane in YIQ space). Values are clamped to [0, 1].

    Parameters
    ----------
    x : Tensor
        (N, C, H, W) floating images in [0, 1].
    magnitude : float or Tensor
        m in [0, 1], or (N,) per sample; 0 is off.
    generator : torch.Generator
        On the device of ``x``.

    Returns
    -------
    Tensor
        (N, C, H, W); samples with ``magnitude == 0`` are ``x`` bitwise.
    """
    _check_images(x, generator)
    if _all_off(magnitude, 0.0):
        return x
    n = x.shape[0]
    m = _per_sample(magnitude, n, x.device, "magnitude")
    u = torch.rand(n, 4, generator=generator, device=x.device)
    factors = 1 + m[:, None] * (2 * u[:, :3] - 1)  # (N, 3) brightness, contrast, saturation
    hue = m * (u[:, 3] - 0.5) * HUE_TURNS_PER_MAGNITUDE  # (N,) turns
    dtype = _work_dtype(x)
    bright, contrast, saturation = factors.to(dtype).unbind(1)
    out = _jitter(x.to(dtype), bright, contrast, saturation, hue)
    return _keep_where(m == 0, x, out) if isinstance(magnitude, Tensor) else out.to(x.dtype)


# ------------------------------------------------------------------------------ cutout
def _cutout(x: Tensor, size: Tensor, cy: Tensor, cx: Tensor) -> Tensor:
    """Zero the size x size square whose top-left is (cy - size//2, cx - size//2), clipped.

    size, cy, cx: (N,) int64. The mask comes from broadcast comparisons, no loop.
    """
    _, _, h, w = x.shape
    y0, x0 = cy - size // 2, cx - size // 2  # (N,)
    r = torch.arange(h, device=x.device)[None, :]  # (1, H)
    c = torch.arange(w, device=x.device)[None, :]  # (1, W)
    in_rows = (r >= y0[:, None]) & (r < (y0 + size)[:, None])  # (N, H)
    in_cols = (c >= x0[:, None]) & (c < (x0 + size)[:, None])  # (N, W)
    mask = in_rows[:, None, :, None] & in_cols[:, None, None, :]  # (N, 1, H, W)
    return torch.where(mask, x.new_zeros(()), x)


def cutout(x: Tensor, size: Value, *, generator: torch.Generator) -> Tensor:
    """Zero a size x size square at a uniformly random centre per sample (DeVries & Taylor).

    The centre is uniform over all pixels, so squares near a border are clipped.

    Parameters
    ----------
    x : Tensor
        (N, C, H, W) floating images.
    size : float or Tensor
        Side in whole pixels >= 0, or (N,) per sample; 0 is off.
    generator : torch.Generator
        On the device of ``x``.

    Returns
    -------
    Tensor
        (N, C, H, W); samples with ``size == 0`` are ``x`` bitwise.
    """
    _check_images(x, generator)
    if _all_off(size, 0.0):
        return x
    n, _, h, w = x.shape
    side = _per_sample(size, n, x.device, "size").floor().to(torch.int64)
    u = torch.rand(n, 2, generator=generator, device=x.device)
    cy = (u[:, 0] * h).floor().to(torch.int64).clamp_(max=h - 1)
    cx = (u[:, 1] * w).floor().to(torch.int64).clamp_(max=w - 1)
    return _cutout(x, side, cy, cx)
