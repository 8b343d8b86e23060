"""The networks of the volumetric baselines (all fully 3D, input ``(B, C, D, H, W)``).

* :class:`UNet3D` - a plain or residual 3D U-Net (``unet3d``, ``unet_per_particle``,
  ``deepfindet``): encoder blocks of two 3x3x3 convolutions, max-pool downsampling,
  transposed-convolution upsampling and concatenated skips.
* :class:`VNet3D` - a small V-Net (``vnet_per_particle``): residual blocks, GroupNorm, PReLU,
  strided-convolution downsampling and additive skips.
* :class:`CNNRegressor3D` - four conv blocks, global average pooling and a dense head that
  outputs ``[confidence logit, z, y, x]`` (``cnn_regressor``).

Inputs whose size is not a multiple of the network's stride are padded and the output cropped
back, so every model maps a ``(B, C, D, H, W)`` input to ``(B, K, D, H, W)``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UNet3D", "VNet3D", "CNNRegressor3D", "count_parameters", "fuse_batchnorm"]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """An inference copy of ``model`` with every BatchNorm folded into the convolution before it.

    Covers :class:`ConvBlock` (``conv1/norm1``, ``conv2/norm2``) and ``nn.Sequential`` runs of
    ``Conv3d`` then ``BatchNorm3d``. The copy is in eval mode; ``model`` is left untouched.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    fused = copy.deepcopy(model).eval()
    for module in fused.modules():
        if isinstance(module, ConvBlock):
            for conv, norm in (("conv1", "norm1"), ("conv2", "norm2")):
                bn = getattr(module, norm)
                if isinstance(bn, nn.BatchNorm3d):
                    setattr(module, conv, fuse_conv_bn_eval(getattr(module, conv), bn))
                    setattr(module, norm, nn.Identity())
        elif isinstance(module, nn.Sequential):
            items = list(module)
            for i in range(len(items) - 1):
                if isinstance(items[i], nn.Conv3d) and isinstance(items[i + 1], nn.BatchNorm3d):
                    module[i] = fuse_conv_bn_eval(items[i], items[i + 1])
                    module[i + 1] = nn.Identity()
    return fused


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "instance":
        return nn.InstanceNorm3d(channels, affine=True)
    if kind == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    raise ValueError(f"unknown norm {kind!r}")


def _act(kind: str, channels: int) -> nn.Module:
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "leakyrelu":
        return nn.LeakyReLU(0.01, inplace=True)
    if kind == "prelu":
        return nn.PReLU(channels)
    raise ValueError(f"unknown activation {kind!r}")


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    size = x.shape[2:]
    pads = [(-s) % multiple for s in size]
    if not any(pads):
        return x, tuple(size)
    # F.pad takes the last dimension first.
    flat = [p for pad in reversed(pads) for p in (0, pad)]
    return F.pad(x, flat, mode="replicate"), tuple(size)


def _crop(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    d, h, w = size
    return x[:, :, :d, :h, :w]


class ConvBlock(nn.Module):
    """Two 3x3x3 convolutions with norm + activation; optionally residual (1x1x1 projection)."""

    def __init__(self, cin: int, cout: int, norm: str = "batch", act: str = "relu",
                 residual: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(cin, cout, 3, padding=1, bias=False)
        self.norm1 = _norm(norm, cout)
        self.act1 = _act(act, cout)
        self.conv2 = nn.Conv3d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = _norm(norm, cout)
        self.act2 = _act(act, cout)
        self.residual = residual
        self.skip = (nn.Conv3d(cin, cout, 1, bias=False) if residual and cin != cout
                     else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        if self.residual:
            y = y + self.skip(x)
        return self.act2(y)


class UNet3D(nn.Module):
    """A 3D U-Net.

    Args:
        in_channels: input channels (1 for a tomogram).
        out_channels: output channels (logits).
        channels: encoder widths, the last being the bottleneck; ``(32, 64, 128)`` is two
            resolution levels of 32 and 64 channels and a 128-channel bottleneck.
        norm: ``batch``, ``instance`` or ``group``.
        act: ``relu``, ``leakyrelu`` or ``prelu``.
        residual: residual conv blocks (DeepFindET).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1,
                 channels: Sequence[int] = (32, 64, 128), norm: str = "batch",
                 act: str = "relu", residual: bool = False) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if len(channels) < 2:
            raise ValueError("UNet3D needs at least one level and a bottleneck")
        self.stride = 2 ** (len(channels) - 1)
        self.down = nn.ModuleList()
        cin = in_channels
        for c in channels[:-1]:
            self.down.append(ConvBlock(cin, c, norm, act, residual))
            cin = c
        self.bottleneck = ConvBlock(cin, channels[-1], norm, act, residual)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        cin = channels[-1]
        for c in reversed(channels[:-1]):
            self.up.append(nn.ConvTranspose3d(cin, c, 2, stride=2))
            self.dec.append(ConvBlock(2 * c, c, norm, act, residual))
            cin = c
        self.head = nn.Conv3d(cin, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = _pad_to_multiple(x, self.stride)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool3d(x, 2)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips), strict=True):
            x = dec(torch.cat([up(x), skip], dim=1))
        return _crop(self.head(x), size)


class ResBlock(nn.Module):
    """V-Net residual block: ``n`` 3x3x3 convolutions (GroupNorm, PReLU) plus the input."""

    def __init__(self, channels: int, n_convs: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(n_convs):
            layers += [nn.Conv3d(channels, channels, 3, padding=1, bias=False),
                       _norm("group", channels)]
            if i < n_convs - 1:
                layers.append(_act("prelu", channels))
        self.body = nn.Sequential(*layers)
        self.act = _act("prelu", channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + x)


class VNet3D(nn.Module):
    """A small V-Net: residual stages, strided-conv downsampling, additive skips.

    ``channels=(8, 16, 32, 64)``: three stages of 8, 16 and 32 channels and a 64-channel
    bottleneck; stage ``i`` has ``min(i + 1, 3)`` convolutions.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1,
                 channels: Sequence[int] = (8, 16, 32, 64)) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if len(channels) < 2:
            raise ValueError("VNet3D needs at least one stage and a bottleneck")
        self.stride = 2 ** (len(channels) - 1)
        self.stem = nn.Sequential(nn.Conv3d(in_channels, channels[0], 3, padding=1, bias=False),
                                  _norm("group", channels[0]), _act("prelu", channels[0]))
        self.enc = nn.ModuleList()
        self.down = nn.ModuleList()
        for i, c in enumerate(channels[:-1]):
            self.enc.append(ResBlock(c, min(i + 1, 3)))
            nxt = channels[i + 1]
            self.down.append(nn.Sequential(nn.Conv3d(c, nxt, 2, stride=2, bias=False),
                                           _norm("group", nxt), _act("prelu", nxt)))
        self.bottleneck = ResBlock(channels[-1], 3 if len(channels) > 3 else 2)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in reversed(range(len(channels) - 1)):
            c, cin = channels[i], channels[i + 1]
            self.up.append(nn.Sequential(nn.ConvTranspose3d(cin, c, 2, stride=2, bias=False),
                                         _norm("group", c), _act("prelu", c)))
            self.dec.append(ResBlock(c, min(i + 1, 3)))
        self.head = nn.Conv3d(channels[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = _pad_to_multiple(x, self.stride)
        x = self.stem(x)
        skips = []
        for enc, down in zip(self.enc, self.down, strict=True):
            x = enc(x)
            skips.append(x)
            x = down(x)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips), strict=True):
            x = dec(up(x) + skip)
        return _crop(self.head(x), size)


class CNNRegressor3D(nn.Module):
    """Four conv blocks (conv, BN, LeakyReLU, max-pool), GAP, dense 128, dropout, 4 outputs.

    Output ``(B, 4)``: a confidence logit and ``z, y, x`` logits; ``sigmoid`` of the last three is
    the position as a fraction of the patch size.
    """

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (16, 32, 64, 128),
                 hidden: int = 128, dropout: float = 0.3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for c in channels:
            c = int(c)
            layers += [nn.Conv3d(cin, c, 3, padding=1, bias=False), nn.BatchNorm3d(c),
                       nn.LeakyReLU(0.01, inplace=True), nn.MaxPool3d(2)]
            cin = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(cin, hidden),
                                  nn.LeakyReLU(0.01, inplace=True), nn.Dropout(dropout),
                                  nn.Linear(hidden, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = F.adaptive_avg_pool3d(x, 1)
        return self.head(x)
