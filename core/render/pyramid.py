"""Multi-scale guidance pyramid (spec section 5.5): Gaussian anti-aliasing blur then subsampling.

Every level is computed directly from the full-resolution map (not as a cascade). The same operator builds
the image pyramid of the VGG loss (spec section 8.2).

Flows in normalised units (``core.coords``) need **no value rescaling** across levels: an offset of 0.1
spans 5 % of the image width at every resolution. The zero background does bleed into the face region near
silhouettes and image borders, and the blur attenuates the flow there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["gaussian_kernel1d", "gaussian_downsample", "guidance_pyramid"]


def gaussian_kernel1d(
    stride: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """Normalised 1-D Gaussian of the level ``stride``: sigma = (s - 1) / 2, size k = 2 * round(4 sigma) + 1.

    Sizes for s = 2, 4, 8, 16, 32: 5, 13, 29, 61, 125. Returns ``(k,)`` summing to 1.
    """
    if stride < 2:
        raise ValueError(f"stride must be >= 2 for a kernel, got {stride}")
    sigma = (stride - 1) / 2.0
    half = round(4 * sigma)  # 4 * sigma = 2 (s - 1) is an integer, so no rounding ambiguity
    x = torch.arange(-half, half + 1, dtype=torch.float64)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return (k / k.sum()).to(dtype=dtype, device=device)


def gaussian_downsample(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Blur ``x (B, C, H, W)`` with the level's separable Gaussian (depthwise, zero padding k // 2) and keep
    every ``stride``-th pixel starting at index 0: ``(B, C, ceil(H / s), ceil(W / s))``; ``s = 1`` is the
    identity (the input itself is returned). Values keep their units (normalised flows need no rescaling).
    """
    if stride == 1:
        return x
    if x.dim() != 4:
        raise ValueError(f"x must be (B, C, H, W), got {tuple(x.shape)}")
    c = x.shape[1]
    k = gaussian_kernel1d(stride, dtype=x.dtype, device=x.device)
    pad = k.numel() // 2
    # Separable and depthwise (groups = C): vertical pass then horizontal, each subsampling by the stride,
    # i.e. indices 0, s, 2s, ... of the zero-padded 'same' blur. Works on any memory format.
    y = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), stride=(stride, 1), padding=(pad, 0), groups=c)
    return F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), stride=(1, stride), padding=(0, pad), groups=c)


def guidance_pyramid(x: torch.Tensor, strides: tuple[int, ...] = (1, 2, 4, 8, 16, 32)) -> dict[int, torch.Tensor]:
    """Multi-scale versions of a guidance map ``(B, C, H, W)``: ``{s: (B, C, H / s, W / s)}``.

    Each level is computed from the full-resolution map. Normalised flows are valid at every level as they
    are (no rescaling).
    """
    return {s: gaussian_downsample(x, s) for s in strides}
