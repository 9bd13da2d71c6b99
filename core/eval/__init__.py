"""Evaluation harness: the paper's metrics and protocols (design/gdpw-model.md §11).

- ``core.eval.metrics``: L1, PSNR, SSIM, CSIM (cosine), AKD, AED, APD and the Fréchet distance.
- ``core.eval.faces``: dlib's detector, 68-point predictor and 128-d face embedding (ArcFace hook).
- ``core.eval.analysis``: ``FrameAnalyser`` measures one image (dlib landmarks and embedding, ICT fit).
- ``core.eval.protocols``: same-id and cross-id pair sampling, clip preparation, ``evaluate``.
- ``core.eval.calibrate``: the ``alpha_scale`` of a geometry-initialised ``pwm`` model, cross-validated by identity.
- ``core.eval.report``: CSV rows, summary JSON, markdown table.
- ``core.eval.inception``: FID status (Inception-v3 is not available in this version).

    from core.eval import evaluate, markdown_table
    result = evaluate("/path/to/clips", protocol="same-id", engine="geometry", pairs=20, seed=0)
    print(markdown_table(result.summary))

Command line: ``python -m core evaluate --engine geometry --clips DIR --protocol same-id --pairs 20
--out report.csv``.
"""

from core.eval.analysis import FrameAnalyser, FrameAnalysis, Timings
from core.eval.faces import DlibFaces, MetricUnavailable
from core.eval.metrics import (
    cosine_similarity,
    expression_distance,
    feature_statistics,
    frechet_distance,
    frechet_distance_features,
    keypoint_distance,
    l1,
    pose_distance,
    pose_errors,
    psnr,
    ssim,
)
from core.eval.protocols import Clip, Evaluation, FrameRef, Pair, evaluate, evaluate_pairs, find_clips, sample_pairs
from core.eval.report import markdown_table, summary_path, write_csv, write_summary

__all__ = [
    "Clip",
    "DlibFaces",
    "Evaluation",
    "FrameAnalyser",
    "FrameAnalysis",
    "FrameRef",
    "MetricUnavailable",
    "Pair",
    "Timings",
    "cosine_similarity",
    "evaluate",
    "evaluate_pairs",
    "expression_distance",
    "feature_statistics",
    "find_clips",
    "frechet_distance",
    "frechet_distance_features",
    "keypoint_distance",
    "l1",
    "markdown_table",
    "pose_distance",
    "pose_errors",
    "psnr",
    "sample_pairs",
    "ssim",
    "summary_path",
    "write_csv",
    "write_summary",
]
