"""Keyframed control curves for video edits: ``keys.json``.

Two forms are read. The short one maps a control to its keys, ``[time_s, value]`` pairs in increasing
time::

    {"smile": [[0, 0], [1.5, 0.6], [3, 0]], "yaw": [[0, 0], [2, 10]]}

The full one adds the mode, the interpolation (per file or per control) and time ranges::

    {"format": "gdpw-keys/1", "mode": "offset", "interpolation": "smooth",
     "controls": {"smile": [[0, 0], [1.5, 0.6]],
                  "yaw": {"interpolation": "linear", "keys": [[0, 0], [2, 10]]}},
     "ranges": [{"start": 1.0, "end": 3.0, "ease": 0.5, "controls": {"browInnerUp_L": 0.5}}]}

Interpolation: ``hold`` (the last key's value until the next key), ``linear``, ``smooth`` (a smoothstep
between keys: zero speed at every key, so motion eases in and out). Before the first key and after the
last the end values are held. A range applies its values between ``start`` and ``end`` seconds, eased
in over the first ``ease`` seconds and out over the last ones (a smoothstep weight from 0 to 1).

Values are checked with ``FaceModel.check_edits`` (offsets may span ± the control's range width); any
problem raises ``PresetError`` naming the file, the control, and the valid controls and ranges.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.edits.presets import MODES, PresetError, check_controls, control_summary, read_json
from core.face.base import FaceModel

KEYS_FORMAT = "gdpw-keys/1"
INTERPOLATIONS = ("hold", "linear", "smooth")


def smoothstep(u: np.ndarray) -> np.ndarray:
    """``3u^2 - 2u^3`` on ``u`` clipped to [0, 1]: 0 -> 0, 1 -> 1, zero slope at both ends."""
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


@dataclass(frozen=True)
class Track:
    """One control's keys: ``times (K,)`` seconds (strictly increasing), ``values (K,)``."""

    control: str
    times: np.ndarray
    values: np.ndarray
    interpolation: str = "smooth"

    def __call__(self, t: np.ndarray) -> np.ndarray:
        """Values at times ``t (T,)`` seconds -> ``(T,)``."""
        t = np.asarray(t, dtype=np.float64)
        times, values = self.times, self.values
        if len(times) == 1:
            return np.full(t.shape, values[0])
        i = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
        t0, t1, v0, v1 = times[i], times[i + 1], values[i], values[i + 1]
        u = np.clip((t - t0) / (t1 - t0), 0.0, 1.0)
        if self.interpolation == "hold":
            return np.where(t >= t1, v1, v0)
        if self.interpolation == "smooth":
            u = smoothstep(u)
        return v0 + (v1 - v0) * u


@dataclass(frozen=True)
class KeyRange:
    """Values applied between ``start`` and ``end`` seconds, eased in and out over ``ease`` seconds."""

    start: float
    end: float
    controls: dict[str, float]
    ease: float = 0.0

    def weight(self, t: np.ndarray) -> np.ndarray:
        """``(T,)`` in [0, 1]: 0 outside the range, 1 inside it away from the eased ends."""
        t = np.asarray(t, dtype=np.float64)
        inside = (t >= self.start) & (t <= self.end)
        if self.ease <= 0:
            return inside.astype(np.float64)
        rise = smoothstep((t - self.start) / self.ease)
        fall = smoothstep((self.end - t) / self.ease)
        return np.where(inside, np.minimum(rise, fall), 0.0)


@dataclass
class Keyframes:
    """Keyed tracks and eased ranges of one file; ``mode`` says whether values are offsets or absolute."""

    tracks: dict[str, Track] = field(default_factory=dict)
    ranges: list[KeyRange] = field(default_factory=list)
    mode: str = "offset"

    @property
    def controls(self) -> list[str]:
        names = list(self.tracks)
        for r in self.ranges:
            names += [n for n in r.controls if n not in names]
        return names


def _number(x: Any, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise PresetError(f"{what} must be a number, got {x!r}")
    value = float(x)
    if not math.isfinite(value):
        raise PresetError(f"{what} must be a finite number, got {value}")
    return value


def parse_track(model: FaceModel, control: str, spec: Any, interpolation: str, offset: bool, where: str) -> Track:
    """A ``Track`` from ``[[t, v], ...]`` or ``{"keys": [...], "interpolation": ...}``."""
    if isinstance(spec, Mapping):
        extra = sorted(set(spec) - {"keys", "interpolation"})
        if extra:
            raise PresetError(f"{where}: control '{control}': unknown entries {extra} (use keys, interpolation)")
        interpolation = spec.get("interpolation", interpolation)
        spec = spec.get("keys")
    if interpolation not in INTERPOLATIONS:
        raise PresetError(
            f"{where}: control '{control}': interpolation must be one of "
            f"{', '.join(INTERPOLATIONS)}, got {interpolation!r}"
        )
    if not isinstance(spec, list) or not spec:
        raise PresetError(
            f"{where}: control '{control}' needs a non-empty list of [time_s, value] keys, got {type(spec).__name__}"
        )
    times, values = [], []
    for k, key in enumerate(spec):
        if not isinstance(key, (list, tuple)) or len(key) != 2:
            raise PresetError(f"{where}: control '{control}' key {k} must be [time_s, value], got {key!r}")
        t = _number(key[0], f"{where}: control '{control}' key {k} time")
        if t < 0:
            raise PresetError(f"{where}: control '{control}' key {k}: time {t:g} s is negative")
        if times and t <= times[-1]:
            raise PresetError(
                f"{where}: control '{control}': key times must increase, got {times[-1]:g} s then {t:g} s (key {k})"
            )
        if isinstance(key[1], bool) or not isinstance(key[1], (int, float)):
            raise PresetError(f"{where}: control '{control}' key {k} value must be a number, got {key[1]!r}")
        value = check_controls(model, {control: key[1]}, offset, f"{where}: key {k}")[control]
        times.append(t)
        values.append(value)
    return Track(control, np.array(times), np.array(values), interpolation)


def parse_range(model: FaceModel, spec: Any, offset: bool, where: str) -> KeyRange:
    if not isinstance(spec, Mapping):
        raise PresetError(f"{where} must be an object with start, end, controls (and ease)")
    extra = sorted(set(spec) - {"start", "end", "ease", "controls"})
    if extra:
        raise PresetError(f"{where}: unknown entries {extra} (use start, end, ease, controls)")
    start = _number(spec.get("start"), f"{where}: start")
    end = _number(spec.get("end"), f"{where}: end")
    ease = _number(spec.get("ease", 0.0), f"{where}: ease")
    if start < 0 or end <= start:
        raise PresetError(f"{where}: needs 0 <= start < end, got start {start:g} s, end {end:g} s")
    if ease < 0 or 2 * ease > end - start:
        raise PresetError(f"{where}: ease must be between 0 and half the range ({(end - start) / 2:g} s), got {ease:g}")
    return KeyRange(start, end, check_controls(model, spec.get("controls"), offset, where), ease)


def parse_keyframes(data: Any, model: FaceModel, name: str = "<keys>", mode: str = "offset") -> Keyframes:
    """Validate decoded JSON (either form) into ``Keyframes``; ``mode``: the default for the short form."""
    if not isinstance(data, Mapping) or not data:
        raise PresetError(
            f"{name}: keyframes are a JSON object: control -> [[time_s, value], ...] "
            f'(or the full "{KEYS_FORMAT}" form); {control_summary(model)}'
        )
    if "format" in data:
        if data["format"] != KEYS_FORMAT:
            raise PresetError(f"{name}: 'format' must be \"{KEYS_FORMAT}\", got {data['format']!r}")
        extra = sorted(set(data) - {"format", "mode", "interpolation", "controls", "ranges"})
        if extra:
            raise PresetError(f"{name}: unknown entries {extra} (use format, mode, interpolation, controls, ranges)")
        mode = data.get("mode", mode)
        interpolation, controls, ranges = (
            data.get("interpolation", "smooth"),
            data.get("controls", {}),
            data.get("ranges", []),
        )
    else:
        interpolation, controls, ranges = "smooth", data, []
    if mode not in MODES:
        raise PresetError(f"{name}: 'mode' must be 'absolute' or 'offset', got {mode!r}")
    if not isinstance(controls, Mapping) or not isinstance(ranges, list):
        raise PresetError(f"{name}: 'controls' must be an object and 'ranges' a list")
    offset = mode == "offset"
    tracks = {}
    for control, spec in controls.items():
        check_controls(model, {control: 0.0}, True, name)  # unknown names first, with the list
        tracks[control] = parse_track(model, control, spec, interpolation, offset, name)
    spans = [parse_range(model, r, offset, f"{name}: range {i}") for i, r in enumerate(ranges)]
    return Keyframes(tracks, spans, mode)


def load_keyframes(source: str | Path | bytes | Mapping[str, Any], model: FaceModel, mode: str = "offset") -> Keyframes:
    """Keyframes from a file path, JSON text/bytes or a decoded mapping (``PresetError`` when bad)."""
    data, name = read_json(source, "keyframes")
    return parse_keyframes(data, model, name, mode)
