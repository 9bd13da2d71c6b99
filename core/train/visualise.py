"""Training pictures, kept apart from the loop (as first-order-model's ``Visualizer``): the trainer only hands
over its ``metrics.jsonl`` and its last batch.

- ``plot_curves(metrics, out)``: a PNG with one panel per group of scalars (generator loss terms, discriminator,
  validation L1 with the geometry and copy baselines, the model's validation L1 relative to the geometry
  engine's in percent, step time split, learning rate), raw values faint and a moving average on top. Uses
  matplotlib's Agg backend (no display), written atomically.
- ``sample_grid(rows)``: one ``(H, W, 3)`` uint8 image from rows of ``(B, 3, S, S)`` tensors (source, driving,
  geometry image, output, alpha ...), for ``samples/step_N.png``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

__all__ = ["read_metrics", "plot_curves", "sample_grid", "write_png", "CURVE_GROUPS"]

log = logging.getLogger(__name__)

# panel title -> key prefixes (metrics.jsonl keys) drawn in it
CURVE_GROUPS: dict[str, tuple[str, ...]] = {
    "generator loss terms": ("pix", "vgg", "ssim", "warp", "flow", "fm", "gan", "g_total"),
    "discriminator": ("d_total",),
    "validation L1 (held-out identities)": ("val/",),
    "validation L1 against the geometry engine (%, below 0 = better)": ("rel/",),
    "seconds per step": ("time/",),
    "learning rate": ("lr",),
}


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """The rows of a ``metrics.jsonl`` as the run's history: a torn last line of a killed run is skipped, and
    where a resumed run logs a step again (it restarts from its last checkpoint, so the steps a killed run
    logged after that are redone), the later rows replace the earlier ones from that step on."""
    rows: list[dict[str, float]] = []
    for line in Path(path).read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        step = row.get("step")
        if isinstance(step, int | float):
            while rows and rows[-1].get("step", -1) >= step:
                rows.pop()
        rows.append(row)
    return rows


def _group_of(key: str) -> str | None:
    for title, prefixes in CURVE_GROUPS.items():
        if any(key == p or (p.endswith("/") and key.startswith(p)) or key.startswith(p + "_") for p in prefixes):
            return title
    return None


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if len(values) < 3 or window < 2:
        return values
    window = min(window, len(values))
    kernel = np.ones(window) / window
    padded = np.concatenate([np.full(window - 1, values[0]), values])
    return np.convolve(padded, kernel, mode="valid")


def plot_curves(metrics: str | Path, out: str | Path, smooth: int = 10) -> Path | None:
    """Draw the training curves of ``metrics`` (a ``metrics.jsonl``) into the PNG ``out``; returns it, or None
    when there is nothing to draw yet."""
    rows = read_metrics(metrics) if Path(metrics).is_file() else []
    series: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for r in rows:
        if r.get("val/l1_geometry"):  # the gain over the baseline, too small to see beside the copy's L1
            r = {**r, "rel/l1_vs_geometry": 100.0 * (r["val/l1"] / r["val/l1_geometry"] - 1.0)}
        for k, v in r.items():
            group = _group_of(k)
            if group is not None and isinstance(v, int | float) and np.isfinite(v):
                series.setdefault(group, {}).setdefault(k, []).append((int(r["step"]), float(v)))
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    titles = [t for t in CURVE_GROUPS if t in series]
    fig = Figure(figsize=(6.0 * min(len(titles), 3), 3.6 * ((len(titles) + 2) // 3)), dpi=90)
    for i, title in enumerate(titles):
        ax = fig.add_subplot((len(titles) + 2) // 3, min(len(titles), 3), i + 1)
        for k, pts in sorted(series[title].items()):
            steps, vals = np.array(pts).T
            line = ax.plot(steps, vals, alpha=0.25, lw=0.8)[0]
            ax.plot(steps, _smooth(vals, smooth), color=line.get_color(), lw=1.5, label=k)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        lows, highs = ax.get_ylim()
        if title == "learning rate" and 0 < lows < highs:
            ax.set_yscale("log")
    fig.tight_layout()
    from core.io.atomic import atomic_path

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    return out


def sample_grid(rows: list[torch.Tensor], n: int = 4) -> np.ndarray:
    """Rows of ``(B, C, S, S)`` images in [0, 1] (C = 1 or 3; the first ``n`` of each batch) as one
    ``(rows * S, n * S, 3)`` uint8 image: one row per tensor, one column per batch element."""
    n = min(n, *(r.shape[0] for r in rows))
    tiles = []
    for r in rows:
        r = r[:n].detach().float().cpu().clamp(0, 1)
        if r.shape[1] == 1:
            r = r.expand(-1, 3, -1, -1)
        tiles.append(torch.cat(list(r), dim=-1))
    grid = torch.cat(tiles, dim=-2)
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def write_png(image: np.ndarray, out: str | Path) -> Path:
    """Write an RGB uint8 image as PNG, atomically."""
    import cv2

    from core.io.atomic import atomic_path

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(image[..., ::-1])):
            raise OSError(f"could not write {out}")
    return out
