"""Make ``core/fit/data/ict_view_bias.npz``: how MediaPipe's landmarks slide as the head turns (``core.fit.view_bias``).

Run ``python -m core.fit.make_view_bias --clips ../shared/samples/videos --manifest configs/samples_identities.csv``
(about 15 minutes on 2 cores). Method, per clip (``--frames`` frames spread over it; clips of the held-out
identities are left out, and no portrait of ``samples/images`` is used, so that the evaluations never see a
face the bias was learned on):

1. Fit the frame and prepare it for the geometry engine: without a view bias in the first pass, with the
   previous pass's bias in the next (``--passes``), so that the source's pose is read as it will be.
2. Turn it by each view of ``VIEWS`` (yaw and pitch changes, the grid of the edit protocol and four diagonal
   views) at full resolution and run MediaPipe on the result. The true landmark positions of the turned
   photo are known: the turned mesh's embedded points, which is where the engine moved the photo's pixels.
3. The drift of each landmark: MediaPipe's point minus the true one, minus the same in the source frame (the
   fit's own
   residual, which the turn carries along).
4. ``fit_view_bias``: per landmark, the least-squares coefficients of the basis; drifts over 1.5 cm (a
   landmark that jumped to another feature) are left out.

Deterministic for the same inputs (MediaPipe's CPU inference is). ``--samples FILE`` keeps the drifts,
``--from-samples FILE`` fits again from them without rendering.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from core.fit.embedding import ICT_VIEW_BIAS
from core.fit.view_bias import ViewBias, fit_view_bias

log = logging.getLogger(__name__)

HELD_OUT = ("kristi_noem", "andrew", "feifeili", "reagan", "lp_d3", "mead_W011")  # the learned engine's
VIEWS: tuple[tuple[float, float], ...] = (
    *((y, 0.0) for y in (-30.0, -20.0, -10.0, 10.0, 20.0, 30.0)),
    *((0.0, p) for p in (-20.0, -10.0, 10.0, 20.0)),
    (-20.0, -15.0),
    (-20.0, 15.0),
    (20.0, -15.0),
    (20.0, 15.0),
)
MAX_DRIFT_CM = 1.5


def spread_frames(path: Path, count: int) -> list[np.ndarray]:
    """``count`` frames spread evenly over a clip (at 1/(count+1), 2/(count+1), ... of its length)."""
    from core.io.video import iter_frames, probe_video

    n = probe_video(path).n_frames or 1
    wanted = {max(0, round(n * (k + 1) / (count + 1)) - 1) for k in range(count)}
    return [f for i, f in enumerate(iter_frames(path, max_frames=max(wanted) + 1)) if i in wanted]


def _drift(
    points_px: np.ndarray, true_px: np.ndarray, rot: torch.Tensor, px_per_cm: float
) -> tuple[np.ndarray, np.ndarray]:
    """Drift of detected points ``(L, 3)`` (u, v, depth in crop pixels) from the true ones: the image-plane
    part in the rest frame ``(L, 3)`` cm (image x right and y down are the model's x and -y, turned back by
    ``rot``) and the depth part ``(L,)`` cm along the camera's axis, relative to its median over the
    landmarks (MediaPipe's depth has an arbitrary offset, which the fitter's free depth offset takes)."""
    d = (points_px - true_px) / px_per_cm
    cam = np.stack([d[:, 0], -d[:, 1], np.zeros(len(d))], -1)
    return cam @ rot.numpy(), d[:, 2] - np.median(d[:, 2])  # R^T v for row vectors


def collect(
    frames: Sequence[tuple[str, np.ndarray]],
    views: Sequence[tuple[float, float]] = VIEWS,
    size: int = 256,
    source_bias: bool | str = False,
) -> dict[str, np.ndarray]:
    """Drifts of every frame and view: ``source_views``, ``target_views`` (N, 2), ``drifts`` (N, L, 3),
    ``depth_drifts`` (N, L), ``valid`` (N, L), ``landmark_ids`` (L,). ``source_bias``: the view bias the
    source photos are fitted with (``FitOptions.view_bias``); the true landmark positions are always the
    embedding's fixed points."""
    from tqdm import tqdm

    from core.animator import Animator
    from core.face.rotation import euler_to_matrix
    from core.fit.api import NoFaceError, fit_image, get_fitter, landmarks_to_crop, obs_to_pixels
    from core.fit.fitter import FitOptions
    from core.fit.landmarks import LandmarkDetector, detect_landmarks

    anim = Animator(engine="geometry", model="ict", size=size)
    model = anim.model
    options = FitOptions(view_bias=source_bias)
    fitter = get_fitter(model, FitOptions(view_bias=False))
    ids = fitter.lmap.landmark_ids.numpy()

    def true_points(params) -> np.ndarray:
        with torch.no_grad():
            return obs_to_pixels(fitter.project(fitter.state_from_params(params)), size)[0]

    out: dict[str, list] = {"source_views": [], "target_views": [], "drifts": [], "depth_drifts": [], "valid": []}
    with LandmarkDetector(video=False) as det:
        for name, frame in tqdm(frames, desc="frames", unit="frame"):
            try:
                fit = fit_image(frame, model=model, size=size, options=options, detector=det, name=name)
            except NoFaceError as exc:
                log.warning("%s", exc)
                continue
            anim.use_source(anim.prepare_source(frame, fit))
            src = fit.params
            px_per_cm = float(src.camera[0, 0]) * size / 2.0
            src_rot = euler_to_matrix(src.head.double())[0]
            src_drift, src_depth = _drift(fit.landmarks[ids], true_points(src), src_rot, px_per_cm)
            for dy, dp in views:
                params = model.apply_edits(
                    src, {"yaw": float(src.head[0, 0]) + dy, "pitch": float(src.head[0, 1]) + dp}
                )
                turned = anim.render(params, full_resolution=True)
                try:
                    found = detect_landmarks(turned, name, det)
                except NoFaceError:
                    continue
                pts = landmarks_to_crop(found.points.astype(np.float64), fit.crop)[ids]
                rot = euler_to_matrix(params.head.double())[0]
                drift, depth = _drift(pts, true_points(params), rot, px_per_cm)
                drift, depth = drift - src_drift, depth - src_depth
                out["source_views"].append(src.head[0, :2].double().numpy())
                out["target_views"].append(params.head[0, :2].double().numpy())
                out["drifts"].append(drift)
                out["depth_drifts"].append(depth)
                out["valid"].append((np.linalg.norm(drift, axis=1) < MAX_DRIFT_CM) & (np.abs(depth) < 2 * MAX_DRIFT_CM))
    if not out["drifts"]:
        raise ValueError("no usable frames: no face was found in any")
    arrays = {k: np.stack(v) for k, v in out.items()}
    arrays["landmark_ids"] = ids
    return arrays


def residual_cm(bias: ViewBias, samples: dict[str, np.ndarray]) -> tuple[float, float]:
    """Median landmark drift (cm) of ``samples`` before and after removing ``bias``'s prediction."""
    from core.fit.view_bias import view_basis

    dphi = (
        view_basis(torch.as_tensor(samples["target_views"])) - view_basis(torch.as_tensor(samples["source_views"]))
    ).numpy()
    pred = np.einsum("nk,klc->nlc", dphi, bias.coef.numpy())
    valid = samples["valid"]
    before = np.linalg.norm(samples["drifts"], axis=-1)[valid]
    after = np.linalg.norm(samples["drifts"] - pred, axis=-1)[valid]
    return float(np.median(before)), float(np.median(after))


def fit_samples(samples: dict[str, np.ndarray], ridge: float = 1.0) -> ViewBias:
    return fit_view_bias(
        samples["source_views"],
        samples["target_views"],
        samples["drifts"],
        samples["depth_drifts"],
        samples["valid"],
        samples["landmark_ids"],
        ridge=ridge,
    )


def main(argv: Sequence[str] | None = None) -> int:
    from core.eval.protocols import find_clips
    from core.logs import setup_logging

    ap = argparse.ArgumentParser(prog="python -m core.fit.make_view_bias", description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", help="folder of talking-head clips (one frame of each is used)")
    ap.add_argument("--manifest", help="CSV file,identity (to leave out --exclude's identities)")
    ap.add_argument("--exclude", default=",".join(HELD_OUT), help="identities left out (comma-separated)")
    ap.add_argument("--frames", type=int, default=2, help="frames per clip")
    ap.add_argument("--passes", type=int, default=2, help="passes (each fits the sources with the last bias)")
    ap.add_argument("--ridge", type=float, default=1.0, help="weight of the coefficients' prior")
    ap.add_argument("--samples", help="also write the drifts to this .npz")
    ap.add_argument("--from-samples", help="fit from drifts written by --samples instead of rendering")
    ap.add_argument("--out", default=str(ICT_VIEW_BIAS), help="output .npz")
    args = ap.parse_args(argv)
    setup_logging()
    if args.from_samples:
        with np.load(args.from_samples, allow_pickle=False) as data:
            samples = {k: data[k] for k in data.files}
    else:
        if not args.clips:
            ap.error("--clips is needed (or --from-samples)")
        excluded = {s.strip() for s in args.exclude.split(",") if s.strip()}
        clips = [c for c in find_clips(args.clips, args.manifest) if c.identity not in excluded]
        frames = [(f"{c.name}#{i}", f) for c in clips for i, f in enumerate(spread_frames(c.path, args.frames))]
        source_bias: bool | str = False
        with tempfile.TemporaryDirectory() as tmp:
            for k in range(args.passes):
                samples = collect(frames, source_bias=source_bias)
                if k + 1 < args.passes:  # each pass its own file: fitters are cached by the options
                    source_bias = str(fit_samples(samples, args.ridge).save(Path(tmp) / f"pass{k + 1}.npz"))
        if args.samples:
            np.savez_compressed(args.samples, **samples)
    bias = fit_samples(samples, args.ridge)
    before, after = residual_cm(bias, samples)
    bias.save(args.out)
    log.info(
        "%d views of %d landmarks: median drift %.3f cm, %.3f cm after the fitted bias; wrote %s",
        len(samples["drifts"]),
        len(samples["landmark_ids"]),
        before,
        after,
        args.out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
