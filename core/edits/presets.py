"""Readable edit presets: ``{"format": "gdpw-edits/1", "mode": "absolute"|"offset", "controls": {...}}``.

A preset is a set of named control values (``model.controls()``), either absolute (``"smile": 0.6``
means the smile is 0.6 whatever the photo had) or offsets added to the photo's (or the video frame's)
own fitted values; ``"look_at_camera": true`` also turns both eyes to the camera, frame by frame,
whatever the head pose (``core.edits.gaze``). Presets are plain JSON: they can be read, edited by hand
and shared. Every value is checked with ``FaceModel.check_edits``; a bad file raises ``PresetError`` (an
``EditError``, so a ``ValueError``) naming the file, the problem, and the valid controls with their ranges.

Shipped presets (``shipped_presets()``): ``neutral``, ``smile``, ``surprise``, ``sad``,
``look_at_camera``, ``wink`` (``core/edits/shipped/*.json``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.face.base import EditError, FaceModel

log = logging.getLogger(__name__)

PRESET_FORMAT = "gdpw-edits/1"
MODES = ("absolute", "offset")
SHIPPED_DIR = Path(__file__).with_name("shipped")


class PresetError(EditError):
    """A preset or keyframe file that cannot be used; the message says which file, what and why."""


def control_summary(model: FaceModel) -> str:
    """One line listing the valid controls and their ranges (shape components collapsed into one entry)."""
    parts, shapes = [], []
    for c in model.controls().values():
        if c.group == "shape":
            shapes.append(c)
        else:
            parts.append(f"{c.name} [{c.minimum:g}, {c.maximum:g}]")
    if shapes:
        parts.append(f"{shapes[0].name}..{shapes[-1].name} [{shapes[0].minimum:g}, {shapes[0].maximum:g}]")
    return "valid controls: " + ", ".join(parts)


def check_controls(model: FaceModel, controls: Any, offset: bool, where: str) -> dict[str, float]:
    """``model.check_edits`` on a mapping read from a file, errors prefixed with ``where`` and followed by
    the list of valid controls and ranges."""
    if not isinstance(controls, Mapping):
        raise PresetError(f"{where}: 'controls' must be an object of name: number, got {type(controls).__name__}")
    try:
        return model.check_edits(controls, offset=offset)
    except EditError as exc:
        raise PresetError(f"{where}: {exc}; {control_summary(model)}") from None


def read_json(source: str | Path | bytes | Mapping[str, Any], what: str) -> tuple[Any, str]:
    """The decoded JSON of a path, bytes/str of JSON or an already decoded mapping, and a name for errors."""
    if isinstance(source, Mapping):
        return dict(source), f"<{what}>"
    if isinstance(source, bytes):
        text, name = source.decode("utf-8", errors="replace"), f"<{what}>"
    elif isinstance(source, str) and source.lstrip().startswith("{"):
        text, name = source, f"<{what}>"
    else:
        path = Path(source)
        if not path.is_file():
            raise PresetError(f"{path}: no such {what} file")
        text, name = path.read_text(encoding="utf-8", errors="replace"), str(path)
    try:
        return json.loads(text), name
    except json.JSONDecodeError as exc:
        raise PresetError(f"{name}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None


@dataclass
class EditPreset:
    """Named control values. ``mode``: ``"absolute"`` or ``"offset"``; ``controls``: ``{name: value}``."""

    controls: dict[str, float] = field(default_factory=dict)
    mode: str = "absolute"
    name: str = ""
    description: str = ""
    look_at_camera: bool = False  # also turn the eyes to the camera, whatever the head pose (per frame)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": PRESET_FORMAT, "mode": self.mode}
        if self.name:
            out["name"] = self.name
        if self.description:
            out["description"] = self.description
        if self.look_at_camera:
            out["look_at_camera"] = True
        out["controls"] = {k: round(float(v), 6) for k, v in self.controls.items()}
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"


def parse_preset(data: Any, model: FaceModel, name: str = "<preset>") -> EditPreset:
    """Validate decoded JSON into an ``EditPreset`` (``PresetError`` on any problem)."""
    if not isinstance(data, Mapping):
        raise PresetError(f"{name}: a preset is a JSON object with 'format', 'mode' and 'controls'")
    fmt = data.get("format")
    if fmt != PRESET_FORMAT:
        raise PresetError(f"{name}: 'format' must be \"{PRESET_FORMAT}\", got {fmt!r}")
    unknown = sorted(set(data) - {"format", "mode", "controls", "name", "description", "look_at_camera"})
    if unknown:
        raise PresetError(
            f"{name}: unknown entries {unknown}; a preset has format, mode, controls "
            "(and optionally name, description, look_at_camera)"
        )
    look = data.get("look_at_camera", False)
    if not isinstance(look, bool):
        raise PresetError(f"{name}: 'look_at_camera' must be true or false, got {look!r}")
    mode = data.get("mode", "absolute")
    if mode not in MODES:
        raise PresetError(f"{name}: 'mode' must be 'absolute' or 'offset', got {mode!r}")
    controls = check_controls(model, data.get("controls", {}), mode == "offset", name)
    return EditPreset(controls, mode, str(data.get("name", "")), str(data.get("description", "")), look)


def load_preset(source: str | Path | bytes | Mapping[str, Any], model: FaceModel) -> EditPreset:
    """A preset from a file path, JSON text/bytes, a decoded mapping, or a shipped preset's name."""
    if isinstance(source, str) and source in shipped_names():
        source = SHIPPED_DIR / f"{source}.json"
    data, name = read_json(source, "preset")
    preset = parse_preset(data, model, name)
    if not preset.name and isinstance(source, (str, Path)) and not str(source).lstrip().startswith("{"):
        preset.name = Path(source).stem
    return preset


def save_preset(preset: EditPreset, path: str | Path, model: FaceModel | None = None) -> Path:
    """Write ``preset`` as indented JSON (validated first with ``model`` when given; nothing written on error)."""
    if model is not None:
        parse_preset(preset.to_json(), model, str(path))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(preset.dumps(), encoding="utf-8")
    tmp.replace(path)
    return path


def shipped_names() -> list[str]:
    """Names of the presets shipped with the package, sorted."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.json"))


def shipped_presets(model: FaceModel) -> dict[str, EditPreset]:
    """Every shipped preset, validated for ``model`` (a preset naming controls the model lacks is skipped)."""
    out = {}
    for name in shipped_names():
        try:
            out[name] = load_preset(SHIPPED_DIR / f"{name}.json", model)
        except PresetError as exc:
            log.warning("shipped preset %s does not suit the %s model: %s", name, model.kind, exc)
    return out


def neutral_values(model: FaceModel) -> dict[str, float]:
    """Absolute values of a neutral expression: every expression channel, the jaw and the lids at 0."""
    return {
        n: 0.0 for n, c in model.controls().items() if c.targets[0][0] in ("expression", "jaw") and c.group != "shape"
    }
