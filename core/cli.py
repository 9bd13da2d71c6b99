"""Command line: ``python -m core <command>``. Every command is a thin layer over the public API."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from core.io.atomic import check_output_path
from core.io.examples import DEFAULT_NAME, default_portrait

log = logging.getLogger("core.cli")


def parse_assignments(items: Sequence[str]) -> dict[str, float]:
    """``["yaw=15", "jawOpen=0.4"]`` -> ``{"yaw": 15.0, "jawOpen": 0.4}``, with a clear error."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"error: --set expects NAME=VALUE, got '{item}'")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise SystemExit(f"error: --set {name}: '{value}' is not a number") from None
    return out


# ------------------------------------------------------------------------------------------ assets
def _cmd_assets(args: argparse.Namespace) -> int:
    from core.assets import AssetNotFoundError, convert_facekit, download_ict, find_ict_model

    if args.action == "download":
        path = download_ict(args.dest)
        print(f"ICT face model ready: {path}")
    elif args.action == "convert":
        if not args.source:
            raise SystemExit("error: assets convert needs --source FaceXModel_folder")
        out = Path(args.dest or ".") / "ict-facekit" / "ict_face_model.npz"
        print(f"wrote {convert_facekit(args.source, out, compact=not args.full)}")
    else:
        try:
            print(find_ict_model())
        except AssetNotFoundError as exc:
            print(exc, file=sys.stderr)
            return 1
    return 0


def _add_assets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("assets", help="locate, download or convert the ICT face model")
    p.add_argument("action", choices=["where", "download", "convert"], nargs="?", default="where")
    p.add_argument("--dest", help="root folder for the converted model (default: the user cache)")
    p.add_argument("--source", help="for convert: a local FaceXModel folder")
    p.add_argument("--full", action="store_true", help="for convert: float32 bases, uncompressed (53 MB)")
    p.set_defaults(func=_cmd_assets)


# ------------------------------------------------------------------------------------------ mesh
def _cmd_mesh(args: argparse.Namespace) -> int:
    import torch

    from core.face import load_face_model
    from core.io.mesh import write_obj

    model = load_face_model(args.model, args.model_path)
    if args.list:
        for c in model.controls().values():
            print(f"{c.name:24s} {c.group:10s} [{c.minimum:g}, {c.maximum:g}]")
        return 0
    params = model.apply_edits(model.neutral(), model.check_edits(parse_assignments(args.set)))
    check_output_path(args.out)
    with torch.no_grad():
        verts = model(params)[0]
    faces = model.render_faces if not args.all_faces else model.faces
    write_obj(args.out, verts.numpy(), faces.numpy())
    lo, hi = verts.min(0).values, verts.max(0).values
    print(
        json.dumps(
            {
                "out": str(args.out),
                "vertices": int(verts.shape[0]),
                "faces": int(faces.shape[0]),
                "bbox_cm": [lo.tolist(), hi.tolist()],
            }
        )
    )
    return 0


def _add_mesh(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mesh", help="pose the face model with named controls and write an OBJ")
    add_model_args(p)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a control, e.g. yaw=20 or jawOpen=0.5 (repeatable; --list shows them)",
    )
    p.add_argument("--list", action="store_true", help="list the controls and their ranges")
    p.add_argument("--all-faces", action="store_true", help="write every triangle, not the render subset")
    p.add_argument("--out", type=Path, default=Path("face.obj"))
    p.set_defaults(func=_cmd_mesh)


# ------------------------------------------------------------------------------------- animation
def _animator(args: argparse.Namespace, edits: dict[str, float] | None = None):
    """The ``Animator`` with the source loaded, after checking ``--out`` and ``edits`` (before the slow
    part: fitting the source)."""
    from core.animator import Animator

    check_output_path(args.out, getattr(args, "out_suffixes", ()))
    anim = Animator(
        engine=args.engine, model=args.model, size=args.size, weights=args.weights, model_path=args.model_path
    )
    if edits:
        anim.model.check_edits(edits)
    if args.source == DEFAULT_NAME:
        anim.load_source(default_portrait())
    else:
        anim.load_source(args.source)
    return anim


def add_model_args(p: argparse.ArgumentParser) -> None:
    """``--model`` and ``--model-path``, the same for every command that builds a face model."""
    p.add_argument(
        "--model",
        default="ict",
        choices=["ict", "flame"],
        help="face model: ict (shipped, MIT) or flame (needs its licensed file)",
    )
    p.add_argument(
        "--model-path", help="face model file (FLAME's generic_model.pkl, or $GDPW_FLAME; ICT is found by core.assets)"
    )


def add_engine_args(p: argparse.ArgumentParser, editing: bool = True) -> None:
    from core.engines.registry import ENGINES, engine_names

    names = engine_names(editing)
    p.add_argument(
        "--engine", default="geometry", choices=names, help="; ".join(f"{n}: {ENGINES[n].summary}" for n in names)
    )
    p.add_argument("--weights", type=Path, help="for engines with weights (pwm): a folder or its .json config")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help=f"source portrait (image file), or {DEFAULT_NAME} for the embedded example")
    add_engine_args(p)
    add_model_args(p)
    p.add_argument("--size", type=int, default=256, choices=[256, 512], help="working crop size")
    p.add_argument("--crop", action="store_true", help="write the face crop instead of the full photo")


def _save_still(args: argparse.Namespace, image) -> int:
    from core.io.image import save_image

    save_image(args.out, image)
    print(json.dumps({"out": str(args.out), "size": list(image.shape[:2])}))
    return 0


def _cmd_edit(args: argparse.Namespace) -> int:
    from core.animator import Animator
    from core.cli_edits import cmd_edit

    return cmd_edit(
        args,
        lambda: Animator(
            engine=args.engine, model=args.model, size=args.size, weights=args.weights, model_path=args.model_path
        ),
    )


def _cmd_frontalize(args: argparse.Namespace) -> int:
    return _save_still(args, _animator(args).frontalize(full_resolution=not args.crop))


def _cmd_animate(args: argparse.Namespace) -> int:
    from core.animator import Animator

    Animator._preset_frames(args.seconds, args.fps)  # refuse bad values before fitting the source
    path = _animator(args).animate(
        args.preset, out=args.out, seconds=args.seconds, fps=args.fps, full_resolution=not args.crop
    )
    print(json.dumps({"out": str(path), "preset": args.preset}))
    return 0


def _cmd_reenact(args: argparse.Namespace) -> int:
    from core.io.video import probe_video

    probe_video(args.driving)  # a missing or unreadable clip is reported before the portrait is fitted
    path = _animator(args).reenact(args.driving, mode=args.mode, out=args.out, full_resolution=not args.crop)
    print(json.dumps({"out": str(path), "mode": args.mode}))
    return 0


STILL_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
MOVIE_SUFFIXES = (".mp4", ".mov", ".mkv")


def _add_animation(sub: argparse._SubParsersAction) -> None:
    from core.animator import PRESETS
    from core.cli_edits import add_edit_options

    p = sub.add_parser("edit", help="edit a portrait (or every photo of a folder) with named controls or a preset")
    _add_common(p)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a control, e.g. yaw=15 or jawOpen=0.4 (repeatable; 'mesh --list' shows them)",
    )
    p.add_argument("--out", type=Path, default=Path("edited.png"), help="output image (a folder for a folder)")
    add_edit_options(p)
    p.set_defaults(func=_cmd_edit, out_suffixes=STILL_SUFFIXES)

    p = sub.add_parser("frontalize", help="turn the head to face the camera")
    _add_common(p)
    p.add_argument("--out", type=Path, default=Path("frontal.png"))
    p.set_defaults(func=_cmd_frontalize, out_suffixes=STILL_SUFFIXES)

    p = sub.add_parser("animate", help="render a preset motion to a video")
    _add_common(p)
    p.add_argument("--preset", required=True, choices=sorted(PRESETS))
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--out", type=Path, default=Path("animation.mp4"))
    p.set_defaults(func=_cmd_animate, out_suffixes=MOVIE_SUFFIXES)

    p = sub.add_parser("reenact", help="drive the portrait with a video")
    _add_common(p)
    p.add_argument("driving", help="driving video")
    p.add_argument("--mode", default="relative", choices=["relative", "absolute"])
    p.add_argument("--out", type=Path, default=Path("reenacted.mp4"))
    p.set_defaults(func=_cmd_reenact, out_suffixes=MOVIE_SUFFIXES)


# ------------------------------------------------------------------------------------------ fit


def _cmd_fit(args: argparse.Namespace) -> int:
    from core.face import load_face_model
    from core.fit import FitOptions, fit_image, fit_video
    from core.io.video import VIDEO_SUFFIXES

    model = load_face_model(args.model, args.model_path)
    options = FitOptions(n_shape=min(args.n_shape, model.n_shape))
    source = Path(args.input)
    summary: dict = {"input": str(source), "out": str(args.out), "size": args.size}
    if source.suffix.lower() in VIDEO_SUFFIXES:
        video = fit_video(
            source,
            model,
            size=args.size,
            options=options,
            smoothing=not args.no_smoothing,
            crop_mode=args.crop_mode,
            max_frames=args.max_frames,
            embedding=args.embedding,
        )
        video.save(args.out)
        q = video.quality
        summary.update(
            frames=q["frames"],
            detected_frames=q["detected_frames"],
            fps=video.fps,
            faces_found=q["faces_found"],
            mean_error=round(q["mean_error"], 5),
        )
    else:
        fit = fit_image(source, model, size=args.size, options=options, border=args.border, embedding=args.embedding)
        fit.save(args.out, with_vertices=args.with_vertices)
        q = fit.quality
        summary.update(
            faces_found=q["faces_found"],
            yaw=round(q["yaw"], 2),
            pitch=round(q["pitch"], 2),
            roll=round(q["roll"], 2),
            landmark_error=round(q["landmark_error"], 5),
        )
    print(json.dumps(summary))
    return 0


def _add_fit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit", help="fit the face model to a portrait or a video (MediaPipe landmarks)")
    p.add_argument("input", help="an image or a video file")
    p.add_argument("--out", type=Path, default=Path("fit.npz"), help="npz with params, crop(s), landmarks, quality")
    p.add_argument("--size", type=int, default=256, choices=[256, 512], help="crop side in pixels")
    add_model_args(p)
    p.add_argument("--embedding", help="landmark embedding (FLAME: mediapipe_landmark_embedding.npz)")
    p.add_argument("--n-shape", type=int, default=50, help="identity coefficients fitted")
    p.add_argument(
        "--border",
        default="replicate",
        choices=["replicate", "zeros"],
        help="how crop pixels outside the image are filled",
    )
    p.add_argument("--with-vertices", action="store_true", help="also store the vertices (images)")
    p.add_argument("--max-frames", type=int, help="video: fit at most this many frames")
    p.add_argument("--crop-mode", default="fixed", choices=["fixed", "smooth", "per_frame"], help="video crops")
    p.add_argument("--no-smoothing", action="store_true", help="video: no temporal smoothing")
    p.set_defaults(func=_cmd_fit)


# ------------------------------------------------------------------------------------------ preprocess / train
def _cmd_preprocess(args: argparse.Namespace) -> int:
    from core.train.preprocess import preprocess_dir

    counts = preprocess_dir(
        args.videos,
        args.out,
        size=args.size,
        shard=args.shard,
        workers=args.workers,
        max_frames=args.max_frames,
        progress=not args.quiet,
    )
    print(json.dumps(counts))
    return 1 if counts["failed"] and not counts["done"] and not counts["skipped"] else 0


def _add_preprocess(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("preprocess", help="fit and crop a folder of talking-head videos into training clips")
    p.add_argument("videos", type=Path, help="folder of videos (searched recursively)")
    p.add_argument("out", type=Path, help="output folder (one sub-folder per clip; finished clips are skipped)")
    p.add_argument("--size", type=int, default=256, help="crop side in pixels")
    p.add_argument("--shard", help="i/n: process every n-th video starting at i (cluster array jobs)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes")
    p.add_argument("--max-frames", type=int, help="use at most this many frames per video")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_preprocess)


def _cmd_train(args: argparse.Namespace) -> int:
    from core.train.config import load_config
    from core.train.trainer import Trainer

    overrides = list(args.set) + ([f"init_weights={json.dumps(str(args.init_weights))}"] if args.init_weights else [])
    config = load_config(args.config, overrides)
    trainer = Trainer(config)
    try:
        logs = trainer.run(args.steps)
    finally:
        trainer.close()
    if trainer.env.main:
        print(json.dumps({"step": trainer.step, "out_dir": config.out_dir, **logs}))
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the PWM generator (also under torchrun for DDP)")
    p.add_argument("--config", required=True, type=Path, help="a .json or .toml training config (configs/)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config entry, e.g. --set optim.steps=1000 --set data.root=/data/vox",
    )
    p.add_argument("--steps", type=int, help="train at most this many iterations in this invocation")
    p.add_argument(
        "--init-weights",
        type=Path,
        help="start a new run from these generator weights (pwm.json or its folder; no optimiser state)",
    )
    p.set_defaults(func=_cmd_train)


def _cmd_geometry_cache(args: argparse.Namespace) -> int:
    from core.train.dataset import PairDataset
    from core.train.geometry_cache import GeometryCacheConfig, build_geometry_cache

    clips = PairDataset(args.data, flip=0.0, jitter=0.0).clips
    counts = build_geometry_cache(
        clips, GeometryCacheConfig(args.pairs, args.sources, args.seed), args.rebuild, progress=not args.quiet
    )
    print(json.dumps({**counts, "seconds": round(counts["seconds"], 1)}))
    return 0


def _add_geometry_cache(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "geometry-cache", help="precompute the geometry engine's flows and images of preprocessed clips (training)"
    )
    p.add_argument("data", type=Path, help="a folder written by 'python -m core preprocess'")
    p.add_argument(
        "--pairs", type=int, default=32, help="cached (source, driving) pairs per clip (data.geometry_pairs)"
    )
    p.add_argument("--sources", type=int, default=8, help="source frames among them (data.geometry_sources)")
    p.add_argument("--seed", type=int, default=100, help="the pool's seed (the training config's seed)")
    p.add_argument("--rebuild", action="store_true", help="recompute existing caches too")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_geometry_cache)


def _cmd_export_weights(args: argparse.Namespace) -> int:
    from core.train.export import export_for_shipping

    meta = export_for_shipping(args.src, args.out, dtype=args.dtype, alpha_scale=args.alpha_scale)
    shown = {
        "out": str(args.out),
        "dtype": meta["dtype"],
        "step": meta.get("step"),
        "alpha_scale": meta.get("alpha_scale", 1.0),
    }
    print(json.dumps(shown))
    return 0


def _add_export_weights(sub: argparse._SubParsersAction) -> None:
    from core.train.export import DTYPES

    p = sub.add_parser("export-weights", help="write a run's pwm.json + pwm.safetensors in the form one ships")
    p.add_argument("src", type=Path, help="a pwm.json (or the run folder that holds it)")
    p.add_argument("out", type=Path, help="output folder (e.g. weights/)")
    p.add_argument("--dtype", default="float16", choices=list(DTYPES), help="storage type of the float tensors")
    p.add_argument(
        "--alpha-scale",
        type=float,
        default=None,
        help="blend calibration in [0, 1]: the engine multiplies the predicted alpha by it (default: the source's "
        "value, else 1)",
    )
    p.set_defaults(func=_cmd_export_weights)


@contextlib.contextmanager
def _quiet_fits(verbose: bool):
    """Fitting logs one line per image: over hundreds of frames it would bury a table (unless ``-v``)."""
    fit_log = logging.getLogger("core.fit")
    level = fit_log.level
    if not verbose:
        fit_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        fit_log.setLevel(level)


def _identities(arg: str | None) -> list[str] | None:
    """``--identities a,b`` -> ``['a', 'b']``; None when empty."""
    return [i.strip() for i in (arg or "").split(",") if i.strip()] or None


def _cmd_calibrate_blend(args: argparse.Namespace) -> int:
    from core.eval import write_csv
    from core.eval.calibrate import calibrate_alpha
    from core.train.export import export_for_shipping

    if args.out is not None:
        check_output_path(args.out / "pwm.json")  # before the slow part
    if args.rows is not None:
        check_output_path(args.rows, (".csv",))
    try:
        scales = [float(v) for v in args.scales.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--scales takes numbers in [0, 1] separated by commas, got {args.scales!r}") from None
    with _quiet_fits(args.verbose):
        choice, rows = calibrate_alpha(
            args.clips,
            args.weights,
            scales,
            identities=_identities(args.identities),
            manifest=args.manifest,
            pairs=args.pairs,
            seed=args.seed,
            metric=args.metric,
            frames_per_clip=args.frames_per_clip,
            progress=not args.quiet,
        )
    if args.rows is not None:
        write_csv(args.rows, rows)
    print(choice.table())
    folds = ", ".join(f"{k} {v:g}" for k, v in choice.folds.items())
    print(f"\nlowest mean {choice.metric}: alpha_scale {choice.best:g}; without each identity: {folds}")
    pooled = ", ".join(f"{m} {v:.5f}" for m, v in choice.pooled.items())
    print(f"left-out identities at their fold's choice: {pooled}")
    if not choice.stable:
        print("note: the folds disagree, so the choice depends on which identities are held out")
    if args.out is not None:
        export_for_shipping(args.weights, args.out, dtype=args.dtype, alpha_scale=choice.best)
        print(f"wrote {args.out / 'pwm.json'} with alpha_scale {choice.best:g}")
    return 0


def _add_calibrate_blend(sub: argparse._SubParsersAction) -> None:
    from core.eval.calibrate import DEFAULT_SCALES
    from core.train.export import DTYPES

    p = sub.add_parser(
        "calibrate-blend",
        help="choose the alpha_scale of a geometry-initialised pwm model on held-out identities (same-id pairs)",
    )
    p.add_argument("weights", type=Path, help="a pwm.json (or its folder): a run's export or shipped weights")
    p.add_argument("--clips", type=Path, required=True, help="folder of talking-head videos")
    p.add_argument("--manifest", type=Path, help="CSV with 'file' and 'identity' columns (see evaluate)")
    p.add_argument("--identities", help="comma-separated identities the model never trained on (recommended)")
    p.add_argument("--scales", default=",".join(f"{s:g}" for s in DEFAULT_SCALES), help="scales to try, in [0, 1]")
    p.add_argument(
        "--metric",
        default="l1",
        choices=["l1", "akd", "aed", "apd", "id_dist"],
        help="the (lower is better) metric whose mean chooses",
    )
    p.add_argument("--pairs", type=int, default=60, help="(source, driving) pairs, as in evaluate")
    p.add_argument("--seed", type=int, default=0, help="seed of the clip order and the frame sampling")
    p.add_argument("--frames-per-clip", type=int, default=50, help="frame candidates per clip, as in evaluate")
    p.add_argument("--rows", type=Path, help="write the per-pair rows of every scale to this CSV")
    p.add_argument("--out", type=Path, help="export the weights with the chosen alpha_scale into this folder")
    p.add_argument("--dtype", default="float16", choices=list(DTYPES), help="storage type of the exported tensors")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_calibrate_blend)


# ------------------------------------------------------------------------------------------ evaluate
def _write_report(out: Path, rows: list[dict], summary: dict, columns: Sequence[str]) -> str:
    """Write a protocol's rows (CSV, ``columns``) and summary (JSON beside it); the lines that say where they
    went."""
    from core.eval import summary_path, write_csv, write_summary

    csv_path = write_csv(out, rows, columns)
    return f"\nrows: {csv_path}\nsummary: {write_summary(summary_path(out), summary)}"


def _cmd_evaluate_edits(args: argparse.Namespace) -> int:
    from core.eval.edits import EDIT_GRID, ROW_COLUMNS, edits_table, evaluate_edits, select_edits

    if args.images is None:
        raise ValueError("--protocol edit needs --images DIR (a folder of portraits)")
    from core.face import load_face_model

    model = load_face_model("ict")
    grid = select_edits(args.edits, EDIT_GRID, EDIT_GRID, model)
    rows, summary = evaluate_edits(
        args.images,
        engine=args.engine,
        grid=grid,
        model=model,
        max_images=args.max_images,
        progress=not args.quiet,
        weights=args.weights,
    )
    written = _write_report(args.out, rows, summary, ROW_COLUMNS)
    print(
        f"edit protocol: {summary['portraits']} portraits ({len(summary['skipped'])} without a face skipped), "
        f"engine {summary['engine']}, {summary['seconds']:.0f} s\n"
    )
    print(edits_table(summary))
    print(written)
    return 0


def _cmd_evaluate_turns(args: argparse.Namespace) -> int:
    from core.eval.turns import ROW_COLUMNS, evaluate_turns, turns_table

    with _quiet_fits(args.verbose):
        rows, summary = evaluate_turns(
            args.clips,
            engine=args.engine,
            frames_per_clip=args.frames_per_clip,
            min_change=args.min_change,
            max_clips=args.max_clips,
            weights=args.weights,
            progress=not args.quiet,
        )
    written = _write_report(args.out, rows, summary, ROW_COLUMNS)
    print(
        f"turns protocol: {summary['controls']['all']['n']} real turns of {summary['min_change']:g} degrees or more "
        f"from {summary['clips']} clips, engine {summary['engine']}, {summary['seconds']:.0f} s\n"
    )
    print(turns_table(summary))
    print(written)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from core.eval import evaluate, markdown_table
    from core.eval.faces import MetricUnavailable, load_arcface
    from core.eval.report import COLUMNS

    if args.protocol == "edit":
        return _cmd_evaluate_edits(args)
    if args.clips is None:
        raise ValueError(f"--protocol {args.protocol} needs --clips DIR (a folder of talking-head videos)")
    if args.protocol == "turns":
        return _cmd_evaluate_turns(args)
    try:
        with _quiet_fits(args.verbose):
            if args.arcface_weights:
                load_arcface(args.arcface_weights)
            result = evaluate(
                args.clips,
                protocol=args.protocol,
                engine=args.engine,
                pairs=args.pairs,
                seed=args.seed,
                frames_per_clip=args.frames_per_clip,
                max_clips=args.max_clips,
                progress=not args.quiet,
                inception_weights=args.inception_weights,
                manifest=args.manifest,
                weights=args.weights,
                identities=_identities(args.identities),
            )
    except MetricUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    s = result.summary
    written = _write_report(args.out, result.rows, s, COLUMNS)
    print(s["fid_status"])
    print(
        f"\n{s['protocol']}: {s['pairs_evaluated']} pairs from {s['clips']} clips ({s['identities']} identities), "
        f"seed {s['seed']}, {s['seconds_per_pair']:.2f} s per pair\n"
    )
    print(markdown_table(s))
    fallbacks = {k: v for k, v in s["mediapipe_box_fallbacks"].items() if v}
    if fallbacks:
        print(f"\ndlib's detector missed the output face; MediaPipe box used: {fallbacks}")
    print(written)
    return 0


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="the paper's metrics over talking-head clips (an engine and the copy baseline)")
    add_engine_args(p, editing=False)  # the copy baseline (output = source) is always evaluated beside it
    p.add_argument("--clips", type=Path, help="same-id, cross-id: folder of talking-head videos")
    p.add_argument(
        "--protocol",
        default="same-id",
        choices=["same-id", "cross-id", "edit", "turns"],
        help="edit: slider edits of portraits (--images), no ground truth (core/eval/edits.py); turns: do the "
        "engine's turned renders read like the real turns of the clips (core/eval/turns.py)",
    )
    p.add_argument("--images", type=Path, help="edit: folder of portraits")
    p.add_argument("--max-images", type=int, help="edit: use at most this many portraits (sorted by name)")
    p.add_argument("--edits", help="edit: a comma-separated subset of the grid, e.g. 'yaw+30,pitch-20'")
    p.add_argument(
        "--pairs",
        type=int,
        default=20,
        help="(source, driving) pairs; same-id samples half as many frame pairs, each both ways",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("report.csv"),
        help="per-pair CSV; the summary goes to <stem>.summary.json beside it",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the clip order and the frame sampling")
    p.add_argument(
        "--frames-per-clip",
        type=int,
        default=50,
        help="frames are drawn from this many candidates spread evenly over each clip",
    )
    p.add_argument(
        "--max-clips", type=int, help="use at most this many clips (the first of the seeded order; turns: by name)"
    )
    p.add_argument(
        "--min-change",
        type=float,
        default=12.0,
        help="turns: the smallest real turn (degrees of yaw or pitch from the clip's most frontal frame) measured",
    )
    p.add_argument(
        "--manifest",
        type=Path,
        help="CSV with 'file' and 'identity' columns (default: MANIFEST.csv in the folder or its parent)",
    )
    p.add_argument(
        "--identities",
        help="same-id, cross-id: only the clips of these comma-separated identities (as the manifest names "
        "them), e.g. a training run's held-out ones: --manifest configs/samples_identities.csv --identities "
        "kristi_noem,andrew",
    )
    p.add_argument(
        "--inception-weights",
        type=Path,
        help="pytorch-fid Inception-v3 weights for FID: a hook, unsupported in this version (FID is "
        "reported as not available; fd_dlib is the distribution metric)",
    )
    p.add_argument(
        "--arcface-weights",
        type=Path,
        help="ArcFace iresnet100 state dict for CSIM: a hook, unsupported in this version (an error "
        "says what it expects); CSIM uses dlib's ResNet embeddings",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_evaluate)


# ------------------------------------------------------------------------------------------ entry
def _add_edit_video(sub: argparse._SubParsersAction) -> None:
    from core.cli_edits import add_edit_video

    add_edit_video(sub)


def _cmd_contact_sheet(args: argparse.Namespace) -> int:
    from core.eval.contact_sheet import LARGE_EDITS, contact_sheet
    from core.eval.edits import EDIT_GRID, select_edits
    from core.io.image import list_images, save_image

    check_output_path(args.out, STILL_SUFFIXES)
    from core.face import load_face_model

    model = load_face_model(args.model, args.model_path)
    edits = select_edits(args.edits, (*LARGE_EDITS, *EDIT_GRID), LARGE_EDITS, model)
    engines = [e.strip() for e in args.engine.split(",") if e.strip()]
    from core.engines.registry import engine_names

    bad = [e for e in engines if e not in engine_names(True)]
    if bad:
        raise ValueError(f"unknown engine(s) {', '.join(bad)}; known: {', '.join(engine_names(True))}")
    paths = [q for p in args.portraits for q in (list_images(p, "portraits") if Path(p).is_dir() else [Path(p)])]
    sheet = contact_sheet(
        paths,
        engines,
        edits,
        full_resolution=args.full_resolution,
        tile=args.tile,
        model=model,
        weights=args.weights,
    )
    save_image(args.out, sheet)
    print(
        json.dumps(
            {"out": str(args.out), "portraits": len(paths), "edits": [c.name for c in edits], "engines": engines}
        )
    )
    return 0


def _add_contact_sheet(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("contact-sheet", help="each large edit of a set of portraits side by side, to look at")
    p.add_argument("portraits", nargs="+", help="portrait files or folders of them")
    p.add_argument("--engine", default="geometry", help="an engine, or several separated by commas (one row each)")
    p.add_argument("--weights", type=Path, help="for engines with weights (pwm): a folder or its .json config")
    p.add_argument("--edits", help="comma-separated edit names (default: the large edits: yaw+-30, pitch+-20, ...)")
    p.add_argument("--full-resolution", action="store_true", help="show whole photos instead of face crops")
    p.add_argument("--tile", type=int, default=256, help="pixels per picture")
    add_model_args(p)
    p.add_argument("--out", type=Path, required=True, help="the sheet (.png/.jpg/.webp)")
    p.set_defaults(func=_cmd_contact_sheet)


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_assets,
    _add_mesh,
    _add_fit,
    _add_animation,
    _add_edit_video,
    _add_preprocess,
    _add_train,
    _add_geometry_cache,
    _add_export_weights,
    _add_calibrate_blend,
    _add_evaluate,
    _add_contact_sheet,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="GDPW Studio command line")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logging, third-party output included (or GDPW_LOG_LEVEL=DEBUG)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


KEEPS_PARTIAL_WORK = {"train", "preprocess", "geometry-cache"}  # commands whose finished steps survive an interruption


def _terminate(signum: int, frame) -> None:
    """SIGTERM handler: unwind like Ctrl-C, so that temporary files are removed on the way out."""
    raise KeyboardInterrupt(f"signal {signum}")


def _interrupted(command: str) -> int:
    """One line for an interrupted run (no traceback); exit status 130 like a shell's for SIGINT."""
    if command in KEEPS_PARTIAL_WORK:
        print("interrupted; finished work is kept, rerun to continue", file=sys.stderr)
    else:
        print("interrupted, nothing written", file=sys.stderr)
    return 130


def main(argv: Sequence[str] | None = None) -> int:
    from core.logs import setup_logging

    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    from core.assets import AssetNotFoundError

    previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
    try:
        return int(args.func(args) or 0)
    except (AssetNotFoundError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        log.debug("interrupted", exc_info=True)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    # Out of the handler the traceback is released: collecting now closes the abandoned generators (their
    # progress bars print a last time) before the one line, which so stays the last thing printed.
    gc.collect()
    return _interrupted(args.command)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
