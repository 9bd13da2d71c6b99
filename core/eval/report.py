"""Evaluation reports: the per-pair CSV, the summary JSON beside it, and a markdown table of the means.

Columns of the CSV (one row per pair and engine): ``protocol, engine, pair, direction, source_clip,
source_frame, source_identity, driving_clip, driving_frame, driving_identity, l1, psnr, ssim, csim, akd,
aed, apd, id_dist, box_output, box_driving, notes``. Metrics that do not apply (cross-id has no ground
truth) or could not be measured (no face found) are empty; ``notes`` says which. ``box_*``: which box
dlib's 68-point predictor used on the output and on the driving frame: ``dlib`` (its detector),
``mediapipe`` (fallback box from MediaPipe landmarks) or ``none``.

Units: l1 in [0, 1] RGB units; psnr in dB; ssim in [-1, 1]; csim cosine of dlib face embeddings; akd in
pixels of the crop (256); aed mean |difference| of ICT's 53 expression weights; apd degrees (mean over
yaw, pitch, roll); id_dist the Euclidean distance of the dlib embeddings (dlib's verification metric,
< 0.6 same person: dlib's embeddings are not centred, so their cosine, csim, stays high, ~0.8-0.9, even
between different people); fd_dlib the Fréchet distance of dlib embeddings (squared embedding units,
FID-style; the copy baseline scores 0 by construction: its outputs are real frames, the very set it is
compared with, as the same-id pairs run both ways and cross-id compares with the sources).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.eval.metrics import frechet_distance_features

COLUMNS = (
    "protocol",
    "engine",
    "pair",
    "direction",
    "source_clip",
    "source_frame",
    "source_identity",
    "driving_clip",
    "driving_frame",
    "driving_identity",
    "l1",
    "psnr",
    "ssim",
    "csim",
    "akd",
    "aed",
    "apd",
    "id_dist",
    "box_output",
    "box_driving",
    "notes",
)
METRICS = ("l1", "psnr", "ssim", "csim", "akd", "aed", "apd", "id_dist")
ARROWS = {
    "l1": "↓",
    "psnr": "↑",
    "ssim": "↑",
    "csim": "↑",
    "akd": "↓",
    "aed": "↓",
    "apd": "↓",
    "id_dist": "↓",
    "fd_dlib": "↓",
}
DIGITS = {"l1": 4, "psnr": 2, "ssim": 4, "csim": 3, "akd": 2, "aed": 4, "apd": 3, "id_dist": 3, "fd_dlib": 4}
DEFINITIONS = {
    "l1": "mean |output - ground truth|, RGB in [0, 1] (same-id)",
    "psnr": "PSNR in dB against the ground truth (same-id)",
    "ssim": "SSIM (Gaussian 11x11, sigma 1.5) against the ground truth, mean over RGB (same-id)",
    "csim": "cosine similarity of dlib ResNet face embeddings: output vs ground truth (same-id) or vs source "
    "(cross-id); dlib's embeddings are not centred, so different people still score ~0.8-0.9",
    "id_dist": "Euclidean distance of the same dlib embeddings (dlib's own verification metric: < 0.6 is the "
    "same person)",
    "akd": "mean distance of dlib's 68 landmarks, output vs driving frame, pixels of the crop (same-id)",
    "aed": "mean |difference| of fitted ICT expression weights (53), output vs driving frame",
    "apd": "mean |difference| of fitted head yaw, pitch, roll in degrees, output vs driving frame",
    "fd_dlib": "Frechet distance of dlib embeddings: outputs vs real frames (ground truths for same-id, "
    "sources for cross-id)",
}


def _mean(values: Sequence[float]) -> float | None:
    v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else None


def summarise(
    rows: list[dict[str, Any]],
    protocol: str,
    engines: Sequence[str],
    embeddings: dict[str, list[np.ndarray]],
    reference: list[np.ndarray],
) -> dict[str, Any]:
    """Per engine: the mean of each metric over the rows where it was measured, how many that was, the
    dlib-box fallbacks, and ``fd_dlib`` (None with fewer than 2 embeddings on a side)."""
    from core.eval.protocols import PROTOCOL_METRICS

    applicable = PROTOCOL_METRICS[protocol]
    means: dict[str, dict[str, Any]] = {}
    counts: dict[str, dict[str, int]] = {}
    fallbacks: dict[str, int] = {}
    for name in engines:
        mine = [r for r in rows if r["engine"] == name]
        means[name] = {m: (_mean([r[m] for r in mine]) if m in applicable else None) for m in METRICS}
        counts[name] = {m: sum(1 for r in mine if not math.isnan(r[m])) for m in applicable}
        counts[name]["rows"] = len(mine)
        fallbacks[name] = sum(1 for r in mine if r["box_output"] == "mediapipe")
        out = embeddings.get(name, [])
        means[name]["fd_dlib"] = (
            frechet_distance_features(np.stack(out), np.stack(reference))
            if len(out) >= 2 and len(reference) >= 2
            else None
        )
        counts[name]["fd_dlib"] = min(len(out), len(reference))
    return {
        "protocol": protocol,
        "engines": list(engines),
        "metrics": list(applicable) + ["fd_dlib"],
        "means": means,
        "counts": counts,
        "mediapipe_box_fallbacks": fallbacks,
        "embedding": "dlib ResNet (dlib_face_recognition_resnet_model_v1), 128-d",
        "definitions": DEFINITIONS,
    }


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.6g}" if digits < 0 else f"{value:.{digits}f}"
    return str(value)


def write_csv(path: str | Path, rows: list[dict[str, Any]], columns: Sequence[str] = COLUMNS) -> Path:
    """Write the rows' ``columns`` (default the reenactment protocols' ``COLUMNS``; NaN written as empty)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(r.get(k), -1) if isinstance(r.get(k), float) else r.get(k, "") for k in columns})
    return path


def summary_path(csv_path: str | Path) -> Path:
    """``report.csv`` -> ``report.summary.json``."""
    p = Path(csv_path)
    return p.with_name(p.stem + ".summary.json")


def write_summary(path: str | Path, summary: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def clean(x):
        if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
            return None if math.isnan(x) else str(x)
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    path.write_text(json.dumps(clean(summary), indent=2) + "\n", encoding="utf-8")
    return path


def markdown_table(summary: dict[str, Any]) -> str:
    """The means per engine as a markdown table (``n/a`` for metrics the protocol does not have)."""
    cols = list(METRICS) + ["fd_dlib"]
    applicable = set(summary["metrics"])
    head = "| engine | pairs | " + " | ".join(f"{c}{ARROWS[c]}" for c in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 2)]
    for name in summary["engines"]:
        m = summary["means"][name]
        cells = [("n/a" if c not in applicable else (_fmt(m.get(c), DIGITS[c]) or "-")) for c in cols]
        lines.append(f"| {name} | {summary['counts'][name]['rows']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
