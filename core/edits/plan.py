"""``EditPlan``: what to do to every frame of a clip (or to one photo), as a function of time.

A plan gathers constant edits (``--set``, a preset) and keyframe files, each either *absolute* (the
control is set to the value) or an *offset* (the value is added to the frame's own fitted value). For a
batch of frames it turns each frame's fitted parameters (the base) into target parameters:

1. absolute values first, blended by their weight: ``x = x + w (v - x)`` (w = 1 for constants and keys,
   the eased weight inside a range; a later source overrides an earlier one);
2. then every offset is added, ``x = x + w v``;
3. every edited control is clamped to its range;
4. with ``look_at_camera``, both eyes are turned to the camera against each frame's (edited) head pose.

Each of a control's targets is edited on its own, so an offset on ``gaze_yaw`` turns both eyes by the
same amount from where each was looking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from core.edits.keyframes import Keyframes, load_keyframes
from core.edits.presets import MODES, EditPreset, PresetError, check_controls, load_preset
from core.face.base import FaceModel
from core.face.params import FaceParams


@dataclass
class EditPlan:
    """Constant edits and keyframes. ``absolute``/``offset``: ``{name: value}``; ``keyframes``: in order."""

    absolute: dict[str, float] = field(default_factory=dict)
    offset: dict[str, float] = field(default_factory=dict)
    keyframes: list[Keyframes] = field(default_factory=list)
    look_at_camera: bool = False

    @classmethod
    def build(
        cls,
        model: FaceModel,
        edits: Mapping[str, float] | None = None,
        mode: str = "offset",
        preset: EditPreset | str | None = None,
        keys: Keyframes | str | list | None = None,
        look_at_camera: bool = False,
    ) -> EditPlan:
        """Validate and gather edits: ``edits`` (``--set``, in ``mode``), a preset (its own mode) and
        keyframes (a file, JSON, mapping or ``Keyframes``, or a list of them; each in its own mode, ``mode``
        for the short form). Raises ``PresetError`` (a ``ValueError``)."""
        if mode not in MODES:
            raise PresetError(f"mode must be 'absolute' or 'offset', got {mode!r}")
        plan = cls(look_at_camera=look_at_camera)
        if preset is not None:
            p = preset if isinstance(preset, EditPreset) else load_preset(preset, model)
            plan.add(p.controls, p.mode)
            plan.look_at_camera |= p.look_at_camera
        if edits:
            plan.add(check_controls(model, dict(edits), mode == "offset", "--set"), mode)
        for k in keys if isinstance(keys, list) else [] if keys is None else [keys]:
            plan.keyframes.append(k if isinstance(k, Keyframes) else load_keyframes(k, model, mode))
        return plan

    def add(self, controls: Mapping[str, float], mode: str) -> None:
        target = self.absolute if mode == "absolute" else self.offset
        for name, value in controls.items():
            if mode == "absolute":
                self.offset.pop(name, None)  # a later absolute value overrides an earlier offset
            target[name] = float(value)

    @property
    def empty(self) -> bool:
        return not (self.absolute or self.offset or self.keyframes or self.look_at_camera)

    @property
    def controls(self) -> list[str]:
        names = list(self.absolute) + [n for n in self.offset if n not in self.absolute]
        for k in self.keyframes:
            names += [n for n in k.controls if n not in names]
        if self.look_at_camera:
            names += [
                n for n in ("gaze_left_yaw", "gaze_left_pitch", "gaze_right_yaw", "gaze_right_pitch") if n not in names
            ]
        return names

    def curves(
        self, times: np.ndarray
    ) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], list[tuple[str, np.ndarray, np.ndarray]]]:
        """Per-frame ``(name, values (T,), weights (T,))`` of the absolute and of the offset edits."""
        t = np.asarray(times, dtype=np.float64)
        ones = np.ones_like(t)
        absolute = [(n, np.full_like(t, v), ones) for n, v in self.absolute.items()]
        offset = [(n, np.full_like(t, v), ones) for n, v in self.offset.items()]
        for k in self.keyframes:
            out = absolute if k.mode == "absolute" else offset
            out += [(n, track(t), ones) for n, track in k.tracks.items()]
            for r in k.ranges:
                w = r.weight(t)
                out += [(n, np.full_like(t, v), w) for n, v in r.controls.items()]
        return absolute, offset

    def values_at(self, model: FaceModel, base: FaceParams, times: np.ndarray) -> dict[str, np.ndarray]:
        """The edited controls' values ``{name: (T,)}`` after ``apply`` (for tests and summaries)."""
        out = self.apply(model, base, times)
        controls = model.controls()
        return {n: controls[n].read(out).numpy().astype(np.float64) for n in self.controls}

    def apply(self, model: FaceModel, base: FaceParams, times: np.ndarray) -> FaceParams:
        """Targets for fitted ``base`` parameters (B = T frames) at ``times (T,)`` seconds."""
        if len(times) != base.batch_size:
            raise ValueError(f"{len(times)} times for {base.batch_size} frames")
        controls = model.controls()
        out = base.clone()
        absolute, offset = self.curves(times)
        edited = set()
        for name, values, weights in absolute:
            v, w = torch.as_tensor(values, dtype=out.head.dtype), torch.as_tensor(weights, dtype=out.head.dtype)
            for fld, index in controls[name].targets:
                cur = getattr(out, fld)[(slice(None), *index)]
                getattr(out, fld)[(slice(None), *index)] = cur + w * (v - cur)
            edited.add(name)
        for name, values, weights in offset:
            d = torch.as_tensor(values * weights, dtype=out.head.dtype)
            for fld, index in controls[name].targets:
                getattr(out, fld)[(slice(None), *index)] += d
            edited.add(name)
        if self.look_at_camera:  # last: the eyes follow the (edited) head of each frame
            from core.edits.gaze import camera_gaze_batch

            for name, value in camera_gaze_batch(model, out).items():
                for fld, index in controls[name].targets:
                    getattr(out, fld)[(slice(None), *index)] = value
        for name in edited:
            c = controls[name]
            for fld, index in c.targets:
                getattr(out, fld)[(slice(None), *index)].clamp_(c.minimum, c.maximum)
        return out
