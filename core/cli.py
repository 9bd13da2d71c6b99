"""Command line: ``python -m core <command>``. Every command is a thin layer over the public API."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

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


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_assets, _add_mesh]


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
