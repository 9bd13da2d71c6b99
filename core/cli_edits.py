"""Command line for edits beyond ``--set``: ``edit-video``, and presets/folders/face choice for ``edit``.

    python -m core edit-video IN.mp4 --set smile=0.6 --keys keys.json --out OUT.mp4
    python -m core edit DIR --preset smile.json --out OUTDIR          # every photo of a folder
    python -m core edit group.jpg --face 1 --preset look_at_camera --out out.png
    python -m core edit-video two_people.mp4 --face 1 --set smile=0.5 --out out.mp4

Everything the user gave (``--set``, ``--preset``, ``--keys``) is validated before anything is read or
written: a bad value or file exits with a message naming the valid controls and ranges, and no output.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("core.cli")

MODE_HELP = (
    "how --set values apply: 'offset' adds them to each frame's own fitted value (the default for "
    "videos: yaw=10 turns every frame 10 degrees further), 'absolute' sets them (yaw=10 holds the head "
    "at 10 degrees)"
)


def _plan(model, args: argparse.Namespace, mode: str):
    """The validated ``EditPlan`` of ``--set``, ``--preset`` and ``--keys``; a ``PresetError`` (a
    ``ValueError``: ``python -m core`` prints it and exits with 2) names the problem and the valid ranges."""
    from core.cli import parse_assignments
    from core.edits import EditPlan

    return EditPlan.build(
        model,
        parse_assignments(args.set),
        mode=mode,
        preset=args.preset,
        keys=getattr(args, "keys", None),
        look_at_camera=args.look_at_camera,
    )


# ------------------------------------------------------------------------------------------ edit-video
def cmd_edit_video(args: argparse.Namespace) -> int:
    from core.animator import Animator
    from core.edits.video import edit_video
    from core.face import load_face_model
    from core.fit.api import default_model
    from core.io.atomic import check_output_path

    check_output_path(args.out, (".mp4", ".mov", ".mkv", ".webm"))
    model = (
        default_model()
        if args.model == "ict" and not args.model_path  # ICT: loaded once
        else load_face_model(args.model, args.model_path)
    )
    plan = _plan(model, args, args.mode)  # everything checked before the engine is built or a frame read
    anim = Animator(engine=args.engine, model=model, size=args.size, weights=args.weights)

    result = edit_video(
        anim.model,
        anim.engine,
        args.input,
        plan,
        out=args.out,
        size=args.size,
        full_resolution=not args.crop,
        max_frames=args.max_frames,
        progress=not args.quiet,
        face=args.face,
    )
    print(json.dumps(result.summary()))
    return 0


def add_edit_video(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "edit-video",
        help="edit every frame of a video (tracked; offsets, presets, keyframes)",
        description="Track the face through a clip and edit every frame. Each frame's own "
        "fitted values are the base; --set values are OFFSETS added to them unless "
        "--mode absolute. The output keeps the input's size, frame count, fps and "
        "audio; frames without a face pass through unchanged.",
    )
    p.add_argument("input", help="the video to edit")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a control, e.g. smile=0.6 or yaw=10 (repeatable; 'mesh --list' shows them); an offset "
        "unless --mode absolute",
    )
    p.add_argument("--mode", default="offset", choices=["offset", "absolute"], help=MODE_HELP)
    p.add_argument("--preset", help="a gdpw-edits/1 JSON file or a shipped preset name (it carries its own mode)")
    p.add_argument(
        "--keys",
        help="keyframes JSON: control -> [[time_s, value], ...] (or the gdpw-keys/1 form with "
        "interpolation hold/linear/smooth and eased time ranges)",
    )
    p.add_argument(
        "--look-at-camera",
        action="store_true",
        help="turn both eyes to the camera on every frame, whatever the head does",
    )
    from core.cli import add_engine_args, add_model_args

    add_engine_args(p)
    add_model_args(p)
    p.add_argument("--size", type=int, default=256, choices=[256, 512], help="working crop size")
    p.add_argument("--crop", action="store_true", help="write the face crops instead of full frames")
    p.add_argument(
        "--face",
        type=int,
        help="which face to edit, by size in the first frame (0 = the largest, "
        "the default); it is tracked within a region around where it starts",
    )
    p.add_argument("--max-frames", type=int, help="edit only the first frames")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--out", type=Path, default=Path("edited.mp4"))
    p.set_defaults(func=cmd_edit_video)


# ------------------------------------------------------------------------------------------ edit (photos)
def edit_photo(anim, plan, source, face: int | None, full_resolution: bool):
    """Load ``source`` (face number ``face``) and render ``plan`` on it: an RGB uint8 image."""
    import numpy as np

    from core.edits import large_edit_warning

    anim.load_source(source, face=face)
    target = plan.apply(anim.model, anim.params_for(), np.zeros(1))
    warning = large_edit_warning(anim.model, anim.source.params, target)
    if warning:
        log.warning("%s: %s", Path(source).name if isinstance(source, (str, Path)) else "the portrait", warning)
    return anim.render(target, full_resolution=full_resolution)


def edit_folder(
    anim, plan, folder: Path, out: Path, face: int | None, full_resolution: bool, progress: bool = True
) -> dict:
    """Apply ``plan`` to every photo of ``folder`` into ``out`` (same names); a failed file is reported on
    stderr in one line and the rest are still done. Returns counts."""
    from tqdm import tqdm

    from core.io.image import list_images, save_image

    files = list_images(folder)
    done, failed = 0, []
    for path in tqdm(files, desc="photos", unit="photo", disable=not progress):
        try:
            image = edit_photo(anim, plan, path, face, full_resolution)
            save_image(out / path.name, image)
            done += 1
        except (ValueError, OSError) as exc:
            failed.append(path.name)
            print(f"error: {path}: {str(exc).splitlines()[0]}", file=sys.stderr)
    return {"out": str(out), "done": done, "failed": len(failed), "failed_files": failed}


def cmd_edit(args: argparse.Namespace, anim_factory) -> int:
    """``python -m core edit``: one photo or a folder; ``--set`` values are absolute for photos unless
    ``--mode offset``."""
    from core.io.atomic import OutputPathError, check_output_path
    from core.io.image import save_image

    source = Path(args.source)
    if source.is_dir():
        if args.out.exists() and not args.out.is_dir():
            raise OutputPathError(f"{args.out} is a file; editing a folder writes into a folder")
    else:
        check_output_path(args.out, getattr(args, "out_suffixes", ()))  # before the slow part
    anim = anim_factory()
    plan = _plan(anim.model, args, args.mode)
    if source.is_dir():
        out = args.out if args.out.suffix == "" else args.out.with_suffix("")
        counts = edit_folder(anim, plan, source, out, args.face, not args.crop, progress=not args.quiet)
        print(json.dumps(counts))
        return 1 if counts["failed"] else 0
    from core.io.examples import DEFAULT_NAME, default_portrait

    image = edit_photo(
        anim, plan, default_portrait() if args.source == DEFAULT_NAME else args.source, args.face, not args.crop
    )
    save_image(args.out, image)
    print(json.dumps({"out": str(args.out), "size": list(image.shape[:2])}))
    return 0


def add_edit_options(p: argparse.ArgumentParser) -> None:
    """``edit``'s options for presets, modes, folders and the face number."""
    p.add_argument(
        "--preset",
        help="a gdpw-edits/1 JSON file or a shipped preset name (neutral, smile, surprise, sad, look_at_camera, wink)",
    )
    p.add_argument(
        "--mode",
        default="absolute",
        choices=["absolute", "offset"],
        help="how --set values apply: 'absolute' (default for photos: yaw=15 sets 15 degrees) or "
        "'offset' (added to the fitted value)",
    )
    p.add_argument("--face", type=int, help="which face when there are several, by size (0 = the largest)")
    p.add_argument("--look-at-camera", action="store_true", help="turn both eyes to the camera")
    p.add_argument("--quiet", action="store_true", help="no progress bar (folders)")
