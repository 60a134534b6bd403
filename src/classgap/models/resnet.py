"""ResNet backbones for 32×32 images: CIFAR ResNet-20/32 (He et al. 2016) and a CIFAR ResNet-18.

:class:`CifarResNet` follows the paper's CIFAR section and the widely used reference code of the
LDAM / SAM long-tail papers (akamaster/pytorch_resnet_cifar10): a 3×3 stem with 16 channels,
three stages of ``n`` BasicBlocks with widths 16/32/64 (``depth = 6n + 2``), option-A shortcuts
(stride-2 subsampling + zero-padded channels, no parameters) and Kaiming normal init.
ResNet-32 has 0.46 M parameters with a 10-class linear head.

:class:`ResNet18` is the usual CIFAR adaptation (kuangliu/pytorch-cifar): the ImageNet
7×7 / stride-2 stem and max-pool are replaced by one 3×3 stride-1 conv; four stages of two
BasicBlocks, widths 64-128-256-512, 1×1-conv projection shortcuts (option B); 11.2 M parameters.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["BasicBlock", "CifarResNet", "ResNet18", "ShortcutA"]


class ShortcutA(nn.Module):
    """Option-A identity shortcut: subsample by ``stride`` and zero-pad the channels.

    ``(N, C_in, H, W) -> (N, C_out, H/stride, W/stride)``, with ``C_out - C_in`` zero channels
    split evenly on both sides as in the reference code. It has no parameters, which is the
    point of option A: ResNet-32's 0.46 M parameters are all in convs, BatchNorms and the head.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError("option-A shortcuts can only add channels")
        self.stride = stride
        extra = out_channels - in_channels
        self.pad = (extra // 2, extra - extra // 2)

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        # F.pad's last pair pads dim 1 (channels) once the two spatial pairs are zero.
        return F.pad(x, (0, 0, 0, 0, *self.pad))


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers and a shortcut: ``relu(bn(conv(relu(bn(conv(x))))) + s(x))``.

    Parameters
    ----------
    in_channels, out_channels : int
    stride : int
        Stride of the first conv (2 at the start of a downsampling stage).
    shortcut : {"A", "B"}
        When the shape changes: "A" = :class:`ShortcutA` (no parameters), "B" = 1×1 conv + BN.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 shortcut: str = "A") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module
        if stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Identity()
        elif shortcut == "A":
            self.shortcut = ShortcutA(in_channels, out_channels, stride)
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        # F.relu, never inplace: in-place ops on views break torch.func (vmap, functional_call).
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def _make_stage(in_channels: int, out_channels: int, blocks: int, stride: int,
                shortcut: str) -> nn.Sequential:
    layers = [BasicBlock(in_channels, out_channels, stride, shortcut)]
    layers += [BasicBlock(out_channels, out_channels, 1, shortcut) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class CifarResNet(nn.Module):
    """He et al. (2016) CIFAR ResNet of depth ``6n + 2`` with option-A shortcuts.

    ``(N, C, H, W) -> (N, 64)``; the spatial size shrinks by 4 (two stride-2 stages) before the
    global average pool: 32×32 → 8×8, 28×28 → 7×7.

    Parameters
    ----------
    blocks_per_stage : int
        ``n``: 3 for ResNet-20, 5 for ResNet-32, 9 for ResNet-56.
    in_channels : int
        C.
    """

    def __init__(self, blocks_per_stage: int, in_channels: int = 3) -> None:
        super().__init__()
        n = blocks_per_stage
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = _make_stage(16, 16, n, 1, "A")  # (N, 16, H, W)
        self.layer2 = _make_stage(16, 32, n, 2, "A")  # (N, 32, H/2, W/2)
        self.layer3 = _make_stage(32, 64, n, 2, "A")  # (N, 64, H/4, W/4)
        self.feature_dim = 64
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # Reference init: kaiming_normal_ with its defaults (fan_in, leaky_relu a=0).
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return out.mean(dim=(2, 3))  # global average pool: (N, 64, h, w) -> (N, 64)


class ResNet18(nn.Module):
    """ResNet-18 with a CIFAR stem (3×3 stride-1 conv, no max-pool); ``(N, C, H, W) -> (N, 512)``.

    The spatial size shrinks by 8 (three stride-2 stages): 32×32 → 4×4.

    Parameters
    ----------
    in_channels : int
        C.
    """

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = _make_stage(64, 64, 2, 1, "B")  # (N, 64, H, W)
        self.layer2 = _make_stage(64, 128, 2, 2, "B")  # (N, 128, H/2, W/2)
        self.layer3 = _make_stage(128, 256, 2, 2, "B")  # (N, 256, H/4, W/4)
        self.layer4 = _make_stage(256, 512, 2, 2, "B")  # (N, 512, H/8, W/8)
        self.feature_dim = 512
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return out.mean(dim=(2, 3))  # (N, 512, h, w) -> (N, 512)
