"""Slider specifications and the slider <-> ``FaceParams`` bookkeeping of the studio.

The truth of an edit is a ``FaceParams`` (the session's current parameters). Each slider is a view of it
through one of the face model's named controls (``model.controls()``), showing an *absolute* value (the
yaw slider starts at the fitted yaw). A slider move is applied as a change: only the sliders whose value
moved (by more than half a step) are written into the parameters, so rounding of the displayed values
never disturbs the fitted ones, and controls that share a target (``blink`` and ``eyeBlink_L``/``_R``)
stay consistent: after a change every slider is read back from the parameters and the ones that moved
are sent to the page.

``zoom`` is not a model control: it scales ``params.camera[:, 0]`` around the source's value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from core.face import FaceModel, FaceParams

ZOOM = "zoom"
N_SHAPE_SLIDERS = 10

# UI sections in display order: key -> (title, open by default, help line)
SECTIONS: dict[str, tuple[str, bool, str]] = {
    "pose": ("Head & neck", True, "Degrees. Yaw turns left/right, pitch nods, roll tilts."),
    "jaw": ("Jaw", True, ""),
    "gaze": ("Gaze & blink", True, "3D eyeballs: gaze turns the eyes without moving the lids."),
    "smile": ("Smile", False, ""),
    "mouth": ("Mouth", False, ""),
    "eyes": ("Eyes", False, "eyeBlink with the link off gives a wink."),
    "brows": ("Brows", False, ""),
    "cheeks": ("Cheeks", False, ""),
    "nose": ("Nose", False, ""),
    "expression": (
        "Expression components",
        True,
        "The face model's expression components (FLAME), in standard deviations.",
    ),
    "shape": ("Face shape (identity)", False, "The first identity components of the 3D model, in standard deviations."),
    "more": ("More", False, ""),
}

_GROUP_SECTION = {
    "head": "pose",
    "neck": "pose",
    "jaw": "jaw",
    "gaze": "gaze",
    "smile": "smile",
    "mouth": "mouth",
    "eyes": "eyes",
    "brows": "brows",
    "cheeks": "cheeks",
    "nose": "nose",
    "shape": "shape",
    "expression": "expression",
}
_PREFIXES = ("mouth", "brow", "eye", "cheek", "nose")


@dataclass(frozen=True)
class SliderSpec:
    """One slider: ``name`` is a model control (or ``"zoom"``)."""

    name: str
    label: str
    minimum: float
    maximum: float
    step: float
    section: str

    @property
    def tolerance(self) -> float:
        """Changes smaller than this are display rounding, not a user's move."""
        return 0.5 * self.step

    @property
    def decimals(self) -> int:
        return max(0, -int(math.floor(math.log10(self.step)))) + 1

    def display(self, value: float) -> float:
        """The value as shown: clamped to the slider's range and rounded."""
        return round(min(max(float(value), self.minimum), self.maximum), self.decimals)


def pretty_label(name: str) -> str:
    """``mouthSmile_L`` -> ``smile L``; ``browInnerUp_R`` -> ``inner up R``; ``jawOpen`` -> ``jaw open``."""
    side = ""
    m = re.match(r"^(.*)_([LR])$", name)
    if m:
        name, side = m.group(1), " " + m.group(2)
    prefix = ""
    for candidate in _PREFIXES:
        if name.startswith(candidate) and len(name) > len(candidate) and name[len(candidate)].isupper():
            prefix, name = candidate, name[len(candidate) :]
            break
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").lower()
    if words in ("left", "right"):
        words = f"{prefix} {words}"
    return words + side


def _step(minimum: float, maximum: float, section: str) -> float:
    if section == "shape":
        return 0.05
    span = maximum - minimum
    return 0.5 if span >= 10 else 0.01


def build_specs(model: FaceModel, n_shape: int = N_SHAPE_SLIDERS) -> list[SliderSpec]:
    """Sliders for ``model`` in display order (sections as in ``SECTIONS``), zoom first.

    Left out, because another slider already drives the same thing: with ICT ``jaw_open``/``jawLeft``/
    ``jawRight`` (``jawOpen`` and ``jaw_sideways`` are shown). The per-eye gaze controls are shown beside
    the both-eyes ones (per-eye gaze).
    """
    controls = model.controls()
    hidden: set[str] = set()
    if "jawOpen" in controls:
        hidden |= {"jaw_open"}
    if "jaw_sideways" in controls:
        hidden |= {"jawLeft", "jawRight"}
    specs = [SliderSpec(ZOOM, "zoom", 0.7, 1.4, 0.01, "pose")]
    shape_seen = 0
    for name, c in controls.items():
        if name in hidden:
            continue
        section = _GROUP_SECTION.get(c.group, "more")
        if name == "blink":
            section = "gaze"
        if section == "shape":
            if shape_seen >= n_shape:
                continue
            shape_seen += 1
        label = c.label if c.label and c.label != name else pretty_label(name)
        if section == "jaw" and not label.startswith("jaw"):
            label = "jaw " + label
        specs.append(
            SliderSpec(
                name,
                label,
                float(c.minimum),
                float(c.maximum),
                _step(float(c.minimum), float(c.maximum), section),
                section,
            )
        )
    order = list(SECTIONS)
    return sorted(specs, key=lambda s: order.index(s.section))  # stable: model order within a section


def union_specs(books: Iterable[ControlBook]) -> list[SliderSpec]:
    """Every slider of several face models once (the first model's spec for a shared name), in section
    order: the studio builds one slider per name and shows those of the session's model."""
    seen: dict[str, SliderSpec] = {}
    for book in books:
        for spec in book.specs:
            seen.setdefault(spec.name, spec)
    order = list(SECTIONS)
    return sorted(seen.values(), key=lambda s: order.index(s.section))


def link_partner(name: str, names: Iterable[str]) -> str | None:
    """``X_L`` <-> ``X_R`` when both exist."""
    m = re.match(r"^(.*)_([LR])$", name)
    if not m:
        return None
    other = f"{m.group(1)}_{'R' if m.group(2) == 'L' else 'L'}"
    return other if other in set(names) else None


class ControlBook:
    """Reads slider values from parameters and applies slider changes to them (no UI code)."""

    def __init__(self, model: FaceModel, specs: list[SliderSpec]) -> None:
        self.model = model
        self.specs = specs
        self.names = [s.name for s in specs]
        self.by_name = {s.name: s for s in specs}
        self._controls = model.controls()
        self.partners = {n: p for n in self.names if (p := link_partner(n, self.names)) is not None}
        targets = {n: set(self._controls[n].targets) for n in self.names if n in self._controls}
        self.aliases = {
            n: [m for m in self.names if m != n and m in targets and targets[n] & targets[m]] for n in targets
        }

    def related(self, name: str) -> list[str]:
        """Sliders whose shown value can change when ``name`` moves: its L/R partner, the partner's
        aliases and its own (controls writing the same parameter, such as ``blink`` and ``eyeBlink_L``)."""
        out: list[str] = []
        partner = self.partners.get(name)
        for n in ([partner] if partner else []) + self.aliases.get(name, []) + self.aliases.get(partner, []):
            if n != name and n not in out:
                out.append(n)
        return [n for n in self.names if n in out]

    def read(self, params: FaceParams, source: FaceParams) -> dict[str, float]:
        """Display values of every slider for ``params`` (zoom relative to ``source``'s camera scale)."""
        out = {}
        for spec in self.specs:
            if spec.name == ZOOM:
                value = float(params.camera[0, 0]) / float(source.camera[0, 0])
            else:
                value = float(self._controls[spec.name].read(params)[0])
            out[spec.name] = spec.display(value)
        return out

    def changed(self, old: Mapping[str, float], new: Mapping[str, float]) -> list[str]:
        """Names whose value moved by more than display rounding, in display order (a NaN counts as moved,
        so that the check refuses it rather than the slider being stuck)."""
        return [
            n
            for n in self.names
            if n in new and not abs(float(new[n]) - float(old.get(n, math.inf))) <= self.by_name[n].tolerance
        ]

    def apply(
        self, params: FaceParams, source: FaceParams, old: Mapping[str, float], new: Mapping[str, float], link: bool
    ) -> tuple[FaceParams, dict[str, float], list[str]]:
        """Apply the sliders that changed from ``old`` to ``new``.

        Returns the new parameters, the values the page shows afterwards and the names of the sliders
        whose shown value must be sent to the page (a linked partner, an alias such as ``blink`` after
        ``eyeBlink_L`` moved, or a value clamped into range).
        """
        moved = self.changed(old, new)
        edits: dict[str, float] = {}
        for name in moved:
            edits[name] = float(new[name])
        if link:
            for name in moved:
                partner = self.partners.get(name)
                if partner is not None and partner not in moved:
                    edits[partner] = float(new[name])
        zoom = edits.pop(ZOOM, None)
        if zoom is not None and not math.isfinite(zoom):
            raise ValueError(f"zoom needs a finite number, got {zoom}")
        edits = self.model.check_edits(edits)  # NaN, inf and out-of-range values refused with the range
        params = self.model.apply_edits(params, edits) if edits else params.clone()
        if zoom is not None:
            params.camera[:, 0] = source.camera[:, 0] * float(zoom)
        after = self.read(params, source)
        shown = {**old, **new}
        updates = [n for n in self.names if abs(after[n] - float(shown.get(n, math.inf))) > self.by_name[n].tolerance]
        page = {n: (after[n] if n in updates else float(shown[n])) for n in self.names}
        return params, page, updates

    def set_values(self, params: FaceParams, source: FaceParams, values: Mapping[str, float]) -> FaceParams:
        """Parameters with every given slider set (used by randomise); zoom relative to ``source``."""
        values = dict(values)
        zoom = values.pop(ZOOM, None)
        params = self.model.apply_edits(params, {k: v for k, v in values.items() if k in self._controls})
        if zoom is not None:
            params.camera[:, 0] = source.camera[:, 0] * float(zoom)
        return params


def random_edits(
    book: ControlBook, rng: np.random.Generator, fitted: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Tasteful random edits: a moderate head pose, a look, and one or two expressions (no identity).

    The pose is near frontal (yaw within 20 degrees, pitch -10..8) and, given the portrait's ``fitted``
    slider values, also within 25 degrees of its yaw and 15 of its pitch (``core.edits.extent``: a turned
    portrait turned 40 degrees the other way is mostly made up); a portrait turned further than that keeps
    the nearest pose that is both."""
    have = set(book.names)
    edits: dict[str, float] = {}

    def put(name: str, value: float) -> None:
        if name in have:
            spec = book.by_name[name]
            edits[name] = spec.display(value)

    def pair(stem: str, value: float) -> None:
        put(f"{stem}_L", value)
        put(f"{stem}_R", value)

    fitted = fitted or {}
    put("yaw", _pose_draw(rng, (-20.0, 20.0), fitted.get("yaw"), 25.0))
    put("pitch", _pose_draw(rng, (-10.0, 8.0), fitted.get("pitch"), 15.0))
    put("roll", rng.uniform(-7, 7))
    put("gaze_yaw", rng.uniform(-12, 12))
    put("gaze_pitch", rng.uniform(-6, 6))
    mood = rng.integers(4)
    if mood == 0:
        s = rng.uniform(0.3, 0.8)
        pair("mouthSmile", s)
        pair("cheekSquint", 0.5 * s)
    elif mood == 1:
        put("jawOpen", rng.uniform(0.15, 0.4))
        pair("browInnerUp", rng.uniform(0.2, 0.6))
        pair("browOuterUp", rng.uniform(0.2, 0.6))
    elif mood == 2:
        pair("mouthFrown", rng.uniform(0.2, 0.6))
        pair("browDown", rng.uniform(0.2, 0.5))
    else:
        put("mouthPucker", rng.uniform(0.3, 0.7))
        put("jawOpen", rng.uniform(0.0, 0.15))
    if rng.random() < 0.25:
        put("eyeBlink_L", 1.0)  # a wink
    return edits


def _pose_draw(rng: np.random.Generator, frontal: tuple[float, float], fitted: float | None, reach: float) -> float:
    """A uniform draw from the ``frontal`` range cut to within ``reach`` of the ``fitted`` value; the nearest
    end of the frontal range when the two do not meet."""
    lo, hi = frontal
    if fitted is not None:
        lo, hi = max(lo, fitted - reach), min(hi, fitted + reach)
        if lo > hi:
            return frontal[0] if fitted < frontal[0] else frontal[1]
    return float(rng.uniform(lo, hi))
