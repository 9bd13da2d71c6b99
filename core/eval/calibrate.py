"""Blend calibration of a geometry-initialised ``pwm`` model: choose the ``alpha_scale`` its engine applies.

A trained geometry-initialised generator blends its own pixels over the geometry engine's image by a
predicted alpha. Trained on a few dozen identities it can paint more than unseen faces bear (the shipped CPU
model: identity distance +8 % against the geometry engine at its raw alpha). ``calibrate_alpha`` evaluates the
same same-id pairs of held-out identities at several scales of that alpha in one pass (the real frames are
analysed once), then ``choose_scale`` picks the scale with the lowest mean of one metric (L1 by default:
the reconstruction error, not the identity metric the calibration is meant to protect) and cross-validates
the choice by identity: each identity in turn is left out, the scale is chosen on the others, and the
left-out identity's pairs are measured at that choice. When every fold picks the overall choice, the pooled
left-out figures equal the overall ones and the choice does not hinge on any one person.

    python -m core calibrate-blend weights/ --clips ../shared/samples/videos \
        --manifest configs/samples_identities.csv --identities kristi_noem,andrew,... --out weights/
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_SCALES", "ScaleChoice", "calibrate_alpha", "choose_scale", "engine_name"]

DEFAULT_SCALES = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 1.0)
REPORTED = ("l1", "ssim", "akd", "id_dist")


def engine_name(scale: float) -> str:
    """The row label of one scale (``alpha_scale=0.6``)."""
    return f"alpha_scale={scale:g}"


@dataclass
class ScaleChoice:
    """``best``: the scale with the lowest mean ``metric`` over all pairs; ``means[scale][m]``: the mean of
    each reported metric; ``folds[identity]``: the scale chosen without that identity; ``pooled[m]``: the
    left-out identities' mean of ``m`` at their fold's choice; ``baseline[m]``: the same pairs at scale 0
    (the geometry engine's image) when it was evaluated."""

    metric: str
    best: float
    means: dict[float, dict[str, float]]
    folds: dict[str, float]
    pooled: dict[str, float]

    @property
    def baseline(self) -> dict[str, float]:
        return self.means.get(0.0, {})

    @property
    def stable(self) -> bool:
        """Every leave-one-identity-out fold chose ``best``."""
        return all(s == self.best for s in self.folds.values())

    def table(self) -> str:
        """Markdown: one row per scale, the chosen one marked."""
        lines = ["| alpha_scale | " + " | ".join(REPORTED) + " |", "|---|" + "---|" * len(REPORTED)]
        for s, m in sorted(self.means.items()):
            mark = " (chosen)" if s == self.best else ""
            lines.append(f"| {s:g}{mark} | " + " | ".join(_fmt(m.get(k)) for k in REPORTED) + " |")
        return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "-" if v is None or math.isnan(v) else f"{v:.5f}"


def _mean(rows: Sequence[dict[str, Any]], metric: str) -> float:
    vals = [float(r[metric]) for r in rows if r.get(metric) not in (None, "") and not math.isnan(float(r[metric]))]
    return sum(vals) / len(vals) if vals else math.nan


def choose_scale(rows_by_scale: dict[float, Sequence[dict[str, Any]]], metric: str = "l1") -> ScaleChoice:
    """Choose a scale from evaluation rows (dicts with ``source_identity`` and the metrics) per scale; lower
    ``metric`` is better (L1, AKD, AED, APD, identity distance). Raises ``ValueError`` without rows."""
    if not rows_by_scale or not any(rows_by_scale.values()):
        raise ValueError("no evaluation rows to choose an alpha_scale from")
    identities = sorted({str(r["source_identity"]) for rows in rows_by_scale.values() for r in rows})

    def argmin(keep) -> float:
        scored = {s: _mean([r for r in rows if keep(r)], metric) for s, rows in rows_by_scale.items()}
        scored = {s: v for s, v in scored.items() if not math.isnan(v)}
        return min(scored, key=lambda s: (scored[s], s))  # ties: the smaller scale (paints less)

    best = argmin(lambda r: True)
    means = {s: {m: _mean(rows, m) for m in REPORTED} for s, rows in rows_by_scale.items()}
    folds: dict[str, float] = {}
    left_out: list[dict[str, Any]] = []
    for ident in identities:
        chosen = argmin(lambda r, i=ident: str(r["source_identity"]) != i) if len(identities) > 1 else best
        folds[ident] = chosen
        left_out += [r for r in rows_by_scale[chosen] if str(r["source_identity"]) == ident]
    pooled = {m: _mean(left_out, m) for m in REPORTED}
    return ScaleChoice(metric, best, means, folds, pooled)


def calibrate_alpha(
    clips: str | Path,
    weights: str | Path,
    scales: Sequence[float] = DEFAULT_SCALES,
    identities: Sequence[str] | None = None,
    manifest: str | Path | None = None,
    pairs: int = 60,
    seed: int = 0,
    metric: str = "l1",
    frames_per_clip: int = 50,
    model=None,
    progress: bool = True,
) -> tuple[ScaleChoice, list[dict[str, Any]]]:
    """Evaluate ``weights`` (a geometry-initialised pwm export) on the same-id pairs of ``clips`` (restricted
    to ``identities``, which the model must never have trained on) at every scale, and choose one. Returns
    the choice and the evaluation rows (``engine`` = ``engine_name(scale)``, plus the ``copy`` rows).
    ``pairs``, ``seed`` and ``frames_per_clip`` sample the pairs as ``core.eval.evaluate`` does."""
    from core.engines.geometry import GeometryEngine
    from core.engines.pwm import PWMEngine
    from core.engines.registry import make_engine
    from core.eval.protocols import evaluate_pairs, find_clips, keep_identities, sample_pairs
    from core.fit.api import default_model
    from core.model import check_alpha_scale

    scales = sorted({check_alpha_scale(s) for s in scales})
    if not scales:
        raise ValueError("no alpha scales to try")
    model = model if model is not None else default_model()
    pwm = PWMEngine(model, weights=weights, device="cpu", geometry=GeometryEngine(model))
    if not pwm.generator.config.geometry_init:
        raise ValueError(f"{pwm.meta_path} is not a geometry-initialised model: it has no blend to calibrate")
    engines: dict[str, Any] = {"copy": make_engine("copy", model)}
    engines.update({engine_name(s): pwm.with_alpha_scale(s) for s in scales})
    clip_list = find_clips(clips, manifest)
    if identities:
        clip_list = keep_identities(clip_list, identities)
    pair_list = sample_pairs(clip_list, "same-id", pairs, frames_per_clip, seed, None)
    result = evaluate_pairs(pair_list, "same-id", engines, model=model, progress=progress)
    by_scale = {s: [r for r in result.rows if r["engine"] == engine_name(s)] for s in scales}
    return choose_scale(by_scale, metric), result.rows
