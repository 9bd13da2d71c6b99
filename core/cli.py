"""Command line: ``python -m core <command>``. Every command is a thin layer over the public API."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

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
        print(f"wrote {convert_facekit(args.source, out)}")
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
    try:
        params = model.apply_edits(model.neutral(), parse_assignments(args.set))
    except KeyError as exc:
        raise SystemExit(f"error: {exc.args[0]}") from None
    with torch.no_grad():
        verts = model(params)[0]
    faces = model.render_faces if not args.all_faces else model.faces
    write_obj(args.out, verts.numpy(), faces.numpy())
    lo, hi = verts.min(0).values, verts.max(0).values
    print(json.dumps({"out": str(args.out), "vertices": int(verts.shape[0]), "faces": int(faces.shape[0]),
                      "bbox_cm": [lo.tolist(), hi.tolist()]}))
    return 0


def _add_mesh(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mesh", help="pose the face model with named controls and write an OBJ")
    p.add_argument("--model", default="ict", choices=["ict", "flame"])
    p.add_argument("--model-path", help="model file (default: found by core.assets for ICT)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a control, e.g. yaw=20 or jawOpen=0.5 (repeatable; --list shows them)")
    p.add_argument("--list", action="store_true", help="list the controls and their ranges")
    p.add_argument("--all-faces", action="store_true", help="write every triangle, not the render subset")
    p.add_argument("--out", type=Path, default=Path("face.obj"))
    p.set_defaults(func=_cmd_mesh)


# ------------------------------------------------------------------------------------- animation
def _animator(args: argparse.Namespace):
    from core.animator import Animator

    anim = Animator(engine=args.engine, model=args.model, size=args.size)
    if args.source == DEFAULT_NAME:
        anim.load_source(default_portrait())
    else:
        anim.load_source(args.source)
    return anim


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help=f"source portrait (image file), or {DEFAULT_NAME} for the embedded example")
    p.add_argument("--engine", default="geometry", choices=["geometry", "pwm"])
    p.add_argument("--model", default="ict", choices=["ict", "flame"])
    p.add_argument("--size", type=int, default=256, choices=[256, 512], help="working crop size")
    p.add_argument("--crop", action="store_true", help="write the face crop instead of the full photo")


def _save_still(args: argparse.Namespace, image) -> int:
    from core.io.image import save_image

    save_image(args.out, image)
    print(json.dumps({"out": str(args.out), "size": list(image.shape[:2])}))
    return 0


def _cmd_edit(args: argparse.Namespace) -> int:
    anim = _animator(args)
    try:
        edits = parse_assignments(args.set)
        image = anim.render(edits, full_resolution=not args.crop)
    except KeyError as exc:
        raise SystemExit(f"error: {exc.args[0]}") from None
    return _save_still(args, image)


def _cmd_frontalize(args: argparse.Namespace) -> int:
    return _save_still(args, _animator(args).frontalize(full_resolution=not args.crop))


def _cmd_animate(args: argparse.Namespace) -> int:
    path = _animator(args).animate(args.preset, out=args.out, seconds=args.seconds, fps=args.fps,
                                   full_resolution=not args.crop)
    print(json.dumps({"out": str(path), "preset": args.preset}))
    return 0


def _cmd_reenact(args: argparse.Namespace) -> int:
    path = _animator(args).reenact(args.driving, mode=args.mode, out=args.out, full_resolution=not args.crop)
    print(json.dumps({"out": str(path), "mode": args.mode}))
    return 0


def _add_animation(sub: argparse._SubParsersAction) -> None:
    from core.animator import PRESETS

    p = sub.add_parser("edit", help="edit a portrait with named controls")
    _add_common(p)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a control, e.g. yaw=15 or jawOpen=0.4 (repeatable; 'mesh --list' shows them)")
    p.add_argument("--out", type=Path, default=Path("edited.png"))
    p.set_defaults(func=_cmd_edit)

    p = sub.add_parser("frontalize", help="turn the head to face the camera")
    _add_common(p)
    p.add_argument("--out", type=Path, default=Path("frontal.png"))
    p.set_defaults(func=_cmd_frontalize)

    p = sub.add_parser("animate", help="render a preset motion to a video")
    _add_common(p)
    p.add_argument("--preset", required=True, choices=sorted(PRESETS))
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--out", type=Path, default=Path("animation.mp4"))
    p.set_defaults(func=_cmd_animate)

    p = sub.add_parser("reenact", help="drive the portrait with a video")
    _add_common(p)
    p.add_argument("driving", help="driving video")
    p.add_argument("--mode", default="relative", choices=["relative", "absolute"])
    p.add_argument("--out", type=Path, default=Path("reenacted.mp4"))
    p.set_defaults(func=_cmd_reenact)


# ------------------------------------------------------------------------------------------ fit
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


def _cmd_fit(args: argparse.Namespace) -> int:
    from core.face import load_face_model
    from core.fit import FitOptions, fit_image, fit_video

    model = load_face_model(args.model, args.model_path)
    options = FitOptions(n_shape=min(args.n_shape, model.n_shape))
    source = Path(args.input)
    summary: dict = {"input": str(source), "out": str(args.out), "size": args.size}
    if source.suffix.lower() in VIDEO_SUFFIXES:
        video = fit_video(source, model, size=args.size, options=options, smoothing=not args.no_smoothing,
                          crop_mode=args.crop_mode, max_frames=args.max_frames, embedding=args.embedding)
        video.save(args.out)
        q = video.quality
        summary.update(frames=q["frames"], detected_frames=q["detected_frames"], fps=video.fps,
                       faces_found=q["faces_found"], mean_error=round(q["mean_error"], 5))
    else:
        fit = fit_image(source, model, size=args.size, options=options, border=args.border,
                        embedding=args.embedding)
        fit.save(args.out, with_vertices=args.with_vertices)
        q = fit.quality
        summary.update(faces_found=q["faces_found"], yaw=round(q["yaw"], 2), pitch=round(q["pitch"], 2),
                       roll=round(q["roll"], 2), landmark_error=round(q["landmark_error"], 5))
    print(json.dumps(summary))
    return 0


def _add_fit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit", help="fit the face model to a portrait or a video (MediaPipe landmarks)")
    p.add_argument("input", help="an image or a video file")
    p.add_argument("--out", type=Path, default=Path("fit.npz"), help="npz with params, crop(s), landmarks, quality")
    p.add_argument("--size", type=int, default=256, choices=[256, 512], help="crop side in pixels")
    p.add_argument("--model", default="ict", choices=["ict", "flame"])
    p.add_argument("--model-path", help="model file (FLAME's generic_model.pkl; ICT found by core.assets)")
    p.add_argument("--embedding", help="landmark embedding (FLAME: mediapipe_landmark_embedding.npz)")
    p.add_argument("--n-shape", type=int, default=50, help="identity coefficients fitted")
    p.add_argument("--border", default="replicate", choices=["replicate", "zeros"],
                   help="how crop pixels outside the image are filled")
    p.add_argument("--with-vertices", action="store_true", help="also store the vertices (images)")
    p.add_argument("--max-frames", type=int, help="video: fit at most this many frames")
    p.add_argument("--crop-mode", default="fixed", choices=["fixed", "smooth", "per_frame"], help="video crops")
    p.add_argument("--no-smoothing", action="store_true", help="video: no temporal smoothing")
    p.set_defaults(func=_cmd_fit)


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_assets, _add_mesh, _add_animation, _add_fit]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="GDPW Studio command line")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    from core.assets import AssetNotFoundError

    try:
        return int(args.func(args) or 0)
    except (AssetNotFoundError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
