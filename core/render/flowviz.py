"""Flow as colour, one convention for the studio, the notebooks and training logs: hue = direction (the
angle of the backward flow vector, image axes, y down), saturation = magnitude relative to a scale, white =
no motion."""

from __future__ import annotations

import math

import numpy as np
import torch


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV (each in [0, 1]) to RGB float ``(..., 3)`` in [0, 1]."""
    h = (h % 1.0) * 6.0
    i = np.floor(h).astype(int) % 6
    f = h - np.floor(h)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], -1)


def flow_colours_float(flow: np.ndarray, scale: float) -> np.ndarray:
    """``(2, H, W)`` flow to RGB float ``(H, W, 3)`` in [0, 1]; full saturation at magnitude ``scale``."""
    fx, fy = flow[0], flow[1]
    hue = (np.arctan2(fy, fx) + math.pi) / (2.0 * math.pi)
    sat = np.clip(np.hypot(fx, fy) / max(scale, 1e-6), 0.0, 1.0)
    return hsv_to_rgb(hue, sat, np.ones_like(sat))


def flow_colours(flow: np.ndarray, scale: float) -> np.ndarray:
    """``(2, H, W)`` flow to RGB uint8 ``(H, W, 3)``; full saturation at magnitude ``scale``."""
    return (np.clip(flow_colours_float(flow, scale), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def flow_to_rgb(flow: torch.Tensor, max_mag: float | None = None) -> torch.Tensor:
    """``(B, 2, H, W)`` flow to ``(B, 3, H, W)`` colours in [0, 1] (for TensorBoard), the same colours as
    ``flow_colours``; full saturation at ``max_mag`` (default the batch's largest magnitude)."""
    f = flow.detach().float().cpu().numpy()
    scale = max_mag or float(max(np.hypot(f[:, 0], f[:, 1]).max(initial=0.0), 1e-6))
    rgb = np.stack([flow_colours_float(item, scale) for item in f])
    return torch.from_numpy(rgb.astype(np.float32)).permute(0, 3, 1, 2).to(flow.device)
