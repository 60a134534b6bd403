"""Small backbones for 28×28 / 32×32 images: :class:`SmallCNN` (the workhorse), :class:`StudyCNN`
(the cheap two-conv net studies sweep many times) and :class:`MLP`.

Both map ``(N, C, H, W)`` to features ``(N, D)`` and expose ``feature_dim``; the classifier head
is added by :func:`classgap.models.create_model`.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from classgap._validation import check_positive_int, fail
from classgap.errors import InputError

__all__ = ["MLP", "SmallCNN", "StudyCNN"]

#: Channel widths of the five 3×3 convolutions of :class:`SmallCNN` at ``width=1``.
CNN_WIDTHS = (32, 32, 64, 64, 128)


def _conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    # No conv bias: the BatchNorm shift that follows makes it redundant.
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU())  # not inplace: in-place ops can break torch.func transforms


class SmallCNN(nn.Module):
    """conv 32-32 → maxpool → conv 64-64 → maxpool → conv 128 → global average pool.

    Every conv is 3×3 (padding 1) + BatchNorm + ReLU. About 139k parameters for one input
    channel at ``width=1`` (≈ 22 M multiply-adds per 28×28 image), small enough for a 2-core
    CPU and big enough for > 91% on Fashion-MNIST in 5 epochs. The global average pool makes it
    accept any input of at least 4×4 (two 2×2 max-pools); 28×28 gives a 7×7 last stage, 32×32 an
    8×8 one.

    Parameters
    ----------
    in_channels : int
        C of the input ``(N, C, H, W)``.
    width : float
        Multiplier of every channel count (:data:`CNN_WIDTHS`); ``feature_dim = round(128·width)``.

    Attributes
    ----------
    feature_dim : int
        D of the output ``(N, D)``.
    """

    def __init__(self, in_channels: int, width: float = 1.0) -> None:
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, int | float) or not width > 0:
            raise fail("width", "be a number > 0", width)
        c1, c2, c3, c4, c5 = (max(1, round(c * width)) for c in CNN_WIDTHS)
        self.features = nn.Sequential(
            _conv_bn(in_channels, c1), _conv_bn(c1, c2), nn.MaxPool2d(2),  # (N, c2, H/2, W/2)
            _conv_bn(c2, c3), _conv_bn(c3, c4), nn.MaxPool2d(2),  # (N, c4, H/4, W/4)
            _conv_bn(c4, c5),  # (N, c5, H/4, W/4)
        )
        self.feature_dim = c5
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # fan_out Kaiming normal, as torchvision's ResNets: keeps activations O(1)
                # through the ReLU stack before BatchNorm's statistics settle.
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x).mean(dim=(2, 3))  # (N, C, H, W) -> (N, D)


class StudyCNN(nn.Module):
    """conv 32 → maxpool → conv 64 → maxpool → flatten → fc 32 → ReLU: the study spec's pilot net.

    Two 3×3 convolutions (padding 1) + BatchNorm + ReLU, each followed by a 2×2 max-pool, then
    one hidden fully connected layer of ``hidden`` units. For one input channel at 28×28 that is
    about 120k parameters and 3.9 M multiply-adds per image, about 5× cheaper than
    :class:`SmallCNN`: a 20-epoch run on 10k Fashion-MNIST images takes about 40 s on 2 CPU
    cores, so a sweep can afford the seeds that separate a real class drop from noise. The
    flatten fixes the input size at construction, as for :class:`MLP`.

    Parameters
    ----------
    in_channels : int
        C of the input ``(N, C, H, W)``.
    image_size : (int, int)
        (H, W) the model is built for; each side at least 4 (two 2×2 max-pools).
    hidden : int
        Width of the fully connected layer; ``feature_dim = hidden``.
    """

    def __init__(self, in_channels: int, image_size: tuple[int, int], hidden: int = 32) -> None:
        super().__init__()
        hidden = check_positive_int(hidden, "hidden")
        self.input_shape = (in_channels, *image_size)  # (C, H, W)
        h, w = image_size[0] // 4, image_size[1] // 4  # after two 2×2 max-pools
        self.features = nn.Sequential(
            _conv_bn(in_channels, 32), nn.MaxPool2d(2),  # (N, 32, H/2, W/2)
            _conv_bn(32, 64), nn.MaxPool2d(2),  # (N, 64, H/4, W/4)
        )
        self.fc = nn.Sequential(nn.Linear(64 * h * w, hidden), nn.ReLU())
        self.feature_dim = hidden
        for m in self.features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-3:]) != self.input_shape:
            raise InputError(f"'x' must have shape (N, {', '.join(map(str, self.input_shape))}) "
                             f"for this cnn_small (built for that image_size); got shape "
                             f"{tuple(x.shape)}")
        # flatten(1) follows the logical (C, H, W) order, so channels_last input is the same.
        return self.fc(self.features(x).flatten(1))  # (N, 64·H/4·W/4) -> (N, hidden)


class MLP(nn.Module):
    """Flatten → [Linear → (BatchNorm1d) → ReLU] per hidden layer; ``feature_dim = hidden[-1]``.

    The input size is fixed at construction (``in_channels × H × W`` inputs to the first layer);
    a batch of another shape raises :class:`~classgap.errors.InputError` instead of a matmul
    shape error.

    Parameters
    ----------
    in_channels : int
        C.
    image_size : (int, int)
        (H, W) the model is built for.
    hidden : sequence of int
        Hidden layer widths, at least one, each >= 1.
    batchnorm : bool
        Add BatchNorm1d after every hidden Linear (before the ReLU).
    """

    def __init__(self, in_channels: int, image_size: tuple[int, int],
                 hidden: Sequence[int] = (256, 128), batchnorm: bool = False) -> None:
        super().__init__()
        if isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence) or not hidden:
            raise fail("hidden", "be a non-empty sequence of integers >= 1", hidden)
        widths = [check_positive_int(h, "hidden") for h in hidden]
        if not isinstance(batchnorm, bool):
            raise fail("batchnorm", "be True or False", batchnorm)
        self.input_shape = (in_channels, *image_size)  # (C, H, W)
        layers: list[nn.Module] = []
        d_in = in_channels * image_size[0] * image_size[1]
        for d_out in widths:
            # The Linear bias is redundant under BatchNorm, as for the convs.
            layers.append(nn.Linear(d_in, d_out, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm1d(d_out))
            layers.append(nn.ReLU())
            d_in = d_out
        self.layers = nn.Sequential(*layers)
        self.feature_dim = d_in

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-3:]) != self.input_shape:
            raise InputError(f"'x' must have shape (N, {', '.join(map(str, self.input_shape))}) "
                             f"for this MLP (built for that image_size); got shape "
                             f"{tuple(x.shape)}")
        # flatten(1) follows the logical (C, H, W) order, so channels_last input is the same.
        return self.layers(x.flatten(1))  # (N, C·H·W) -> (N, D)
