"""Building blocks of the PWM generator and the discriminator (design doc ``gdpw-model.md`` section 6.1).

- ``conv(cin, cout, k, ..., sn=True)``: a convolution with bias and, by default, spectral normalisation.
  We use the *legacy* ``torch.nn.utils.spectral_norm`` (one power iteration per forward pass in train mode)
  on purpose: its state-dict names (``weight_orig``, ``weight_u``, ``weight_v``) are those of the official
  code, and ``fold_spectral_norm`` removes it for inference.
- ``ConvBlock``, ``DownBlock``, ``UpBlock``: conv -> BatchNorm(affine) -> LReLU(0.1) (+ pool / upsample).
- ``SPADE`` and ``SPADEResBlock``: BatchNorm without affine, modulated by a guidance map that must already be
  at the feature's resolution (no resizing inside, as in the original).

BatchNorm is plain ``nn.BatchNorm2d``; the trainer converts it to ``SyncBatchNorm`` for multi-GPU runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LRELU_SLOPE",
    "conv",
    "ConvBlock",
    "DownBlock",
    "UpBlock",
    "SPADE",
    "SPADEResBlock",
    "fold_spectral_norm",
    "has_spectral_norm",
]

LRELU_SLOPE = 0.1


def conv(cin: int, cout: int, k: int = 3, stride: int = 1, padding: int | None = None, sn: bool = True) -> nn.Module:
    """``k x k`` convolution with bias; spectral-normalised unless ``sn=False`` (flow heads, output conv,
    discriminator logits: spec section 12.3). ``padding`` defaults to ``k // 2``."""
    layer = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2 if padding is None else padding, bias=True)
    return nn.utils.spectral_norm(layer) if sn else layer


def lrelu(x: torch.Tensor) -> torch.Tensor:
    # not in place: the original's in-place activations save memory but complicate autograd checks
    return F.leaky_relu(x, LRELU_SLOPE)


class ConvBlock(nn.Module):
    """3x3 SN conv -> BatchNorm2d(affine) -> LReLU(0.1). ``(B, cin, H, W) -> (B, cout, H, W)``."""

    def __init__(self, cin: int, cout: int, k: int = 3, padding: int | None = None) -> None:
        super().__init__()
        self.conv = conv(cin, cout, k, padding=padding)
        self.norm = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lrelu(self.norm(self.conv(x)))


class DownBlock(ConvBlock):
    """ConvBlock then AvgPool2d(2) (pooling after the activation). Generator: k=3, p=1; discriminator:
    k=4, p=2, which makes the conv output one pixel larger (256 -> 257 -> 128)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(super().forward(x), 2)


class UpBlock(ConvBlock):
    """Nearest-neighbour x2 upsampling then ConvBlock. ``(B, cin, H, W) -> (B, cout, 2H, 2W)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class SPADE(nn.Module):
    """``BN(x) * (1 + gamma(m)) + beta(m)`` with an affine-free BatchNorm (running statistics at eval).

    ``x (B, cx, H, W)``, ``m (B, cm, H, W)`` at the same resolution; hidden width ``ch``.
    """

    def __init__(self, cx: int, cm: int, ch: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(cx, affine=False)
        self.shared = conv(cm, ch)
        self.gamma = conv(ch, cx)
        self.beta = conv(ch, cx)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        if m.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"SPADE guidance is {tuple(m.shape[-2:])}, features are {tuple(x.shape[-2:])}")
        h = lrelu(self.shared(m.to(x.dtype)))
        return self.norm(x) * (1.0 + self.gamma(h)) + self.beta(h)


class SPADEResBlock(nn.Module):
    """SPADE residual block (spec 6.1): main path SPADE -> LReLU -> conv3x3 -> SPADE -> LReLU -> conv3x3,
    skip path a learned 1x1 SN conv when ``cin != cout`` (no SPADE, no norm on the skip)."""

    def __init__(self, cin: int, cout: int, cm: int, ch: int) -> None:
        super().__init__()
        self.norm_0 = SPADE(cin, cm, ch)
        self.conv_0 = conv(cin, cout)
        self.norm_1 = SPADE(cout, cm, ch)
        self.conv_1 = conv(cout, cout)
        self.skip = conv(cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        h = self.conv_0(lrelu(self.norm_0(x, m)))
        h = self.conv_1(lrelu(self.norm_1(h, m)))
        return h + (self.skip(x) if self.skip is not None else x)


def has_spectral_norm(module: nn.Module) -> bool:
    """True when any submodule still carries a (legacy) spectral-norm hook."""
    from torch.nn.utils.spectral_norm import SpectralNorm

    return any(isinstance(h, SpectralNorm) for m in module.modules() for h in m._forward_pre_hooks.values())


def fold_spectral_norm(module: nn.Module) -> nn.Module:
    """Replace every spectral-normalised weight by its current value ``W / sigma`` (using the stored u, v,
    no power iteration) and drop the hooks: an inference model with plain convolutions. In place."""
    from torch.nn.utils.spectral_norm import SpectralNorm

    for m in module.modules():
        if any(isinstance(h, SpectralNorm) for h in m._forward_pre_hooks.values()):
            nn.utils.remove_spectral_norm(m)
    return module
