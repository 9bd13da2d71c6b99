"""Smooth filling of unknown pixels: harmonic (membrane) interpolation solved coarse to fine.

Used to extend the mesh's displacement field over hair, ears and neck (known: the mesh flow and a zero
flow on the background) and to fill the background plate behind the person (known: the background).
Each level runs Jacobi sweeps of the 4-neighbour average with the known pixels held fixed; the coarse
levels carry the solution across large holes, so a few sweeps per level are enough.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _neighbour_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of the 4 neighbours, replicating the border (no flux through the image edge)."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return 0.25 * (p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:])


def _downsample(values: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask-weighted 2x2 average: a coarse pixel is known if any of its four children is."""
    weight = F.avg_pool2d(known, 2, ceil_mode=True)
    mean = F.avg_pool2d(values * known, 2, ceil_mode=True) / weight.clamp(min=1e-6)
    return mean, (weight > 0).to(known)


def _window(mask: torch.Tensor, pad: int) -> tuple[int, int, int, int] | None:
    """Bounding rows/columns ``(y0, y1, x0, x1)`` of the nonzero pixels of ``mask (B, 1, H, W)`` over the whole
    batch, grown by ``pad`` and clipped; None if there are none."""
    rows = mask.amax(dim=(0, 1, 3)) > 0
    cols = mask.amax(dim=(0, 1, 2)) > 0
    if not rows.any():
        return None
    ys, xs = torch.nonzero(rows)[:, 0], torch.nonzero(cols)[:, 0]
    h, w = mask.shape[-2:]
    return (
        max(0, int(ys[0]) - pad),
        min(h, int(ys[-1]) + 1 + pad),
        max(0, int(xs[0]) - pad),
        min(w, int(xs[-1]) + 1 + pad),
    )


def harmonic_fill(
    values: torch.Tensor,
    known: torch.Tensor,
    sweeps: int = 12,
    coarsest: int = 8,
    skip_finest: int = 0,
    within: torch.Tensor | None = None,
    pad: int = 8,
) -> torch.Tensor:
    """Fill ``values (B, C, H, W)`` where ``known (B, 1, H, W)`` (0/1) is 0 by harmonic interpolation.

    Known pixels keep their values exactly. Pixels with no known pixel anywhere get 0.
    ``skip_finest`` levels get no sweeps, only the upsampled coarser solution: for smooth fields (flows)
    one skipped level costs little accuracy and saves three quarters of the work.
    The solve runs on the window around the pixels to fill (grown by ``pad``), so a small hole costs little:
    by default the unknown pixels, all of which are filled; with ``within (B, 1, H, W)``, only the window
    around those pixels is solved and other unknown pixels keep ``values``.
    """
    known = (known > 0.5).to(values)
    box = _window((1.0 - known) if within is None else (within > 0.5).to(values) * (1.0 - known), pad)
    if box is None:
        return values.clone() if within is not None else torch.where(known > 0, values, torch.zeros_like(values))
    y0, y1, x0, x1 = box
    out = values.clone()
    out[..., y0:y1, x0:x1] = _solve(values[..., y0:y1, x0:x1], known[..., y0:y1, x0:x1], sweeps, coarsest, skip_finest)
    return out


def _solve(values: torch.Tensor, known: torch.Tensor, sweeps: int, coarsest: int, skip_finest: int) -> torch.Tensor:
    """The coarse-to-fine Jacobi solve of ``harmonic_fill`` on a whole (window) image."""
    pyramid = [(values, known)]
    while min(pyramid[-1][0].shape[-2:]) > coarsest:
        pyramid.append(_downsample(*pyramid[-1]))
    v, k = pyramid[-1]
    count = k.sum(dim=(2, 3), keepdim=True)
    x = torch.where(k > 0, v, (v * k).sum(dim=(2, 3), keepdim=True) / count.clamp(min=1))
    for level in range(len(pyramid) - 1, -1, -1):
        v, k = pyramid[level]
        if x.shape[-2:] != v.shape[-2:]:
            x = F.interpolate(x, size=v.shape[-2:], mode="bilinear", align_corners=False)
        # the coarsest level converges fully; finer levels only refine what it carried over
        n = sweeps * 8 if level == len(pyramid) - 1 else (sweeps if level >= skip_finest else 0)
        fixed, free = v * k, 1.0 - k
        x = fixed + free * x
        for _ in range(n):
            x = fixed + free * _neighbour_mean(x)
    return x
