"""The engine interface: what the ``Animator``, the studio, evaluation and the notebooks may call.

An engine works on the square face crop. ``prepare`` runs once per source photo (segmentation,
encoding); ``render`` runs for every new set of target parameters (a slider move, a video frame) and
takes a batch of targets at once; ``inspect`` renders one target and returns its typed debug layers.
Engines are listed in ``core.engines.registry``; a new engine is one module there plus one registry line.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from core.face.params import FaceParams


@dataclass
class EngineResult:
    """Output of ``Engine.render`` for B targets.

    - ``images``: ``(B, S, S, 3)`` uint8 crops.
    - ``flow``: ``(B, 2, S, S)`` backward flow (normalised crop units) the images were warped with, or
      None for engines that synthesise every pixel.
    - ``synthesised``: ``(B, S, S)`` float in [0, 1], where full-resolution output takes the crop's pixels
      instead of moving the photo's: pixels made up rather than moved (the inside of an opened mouth) and
      any the flow alone cannot place (the geometry engine's head layer edge); paste-back blends these from
      the crop. ``Inspection.synthesised`` keeps only the made-up ones.
    - ``debug``: optional guidance maps for the studio's inspect tab and the notebooks.
    - ``outer_flow``: optional ``(B, 2, S + 2m, S + 2m)`` the same flow over the crop grown by ``margin`` = m
      pixels on each side (normalised units of the crop), so that full-resolution output can move the
      photo's pixels just beyond the crop too; ``flow`` is its middle.
    - ``detail``: optional ``(B, S, S)`` in [0, 1], part of ``synthesised``: pasted pixels that stand for skin
      the flow stretched too far to keep (the side of the face a turn brings round), whose fill is smooth, and
      ``detail_flow`` ``(B, 2, S, S)``: a backward flow on the result (normalised crop units) to where finer
      grain for them may be read. Full resolution adds the grain the result holds there beyond the crop's
      resolution, so that on a photo larger than the crop they do not show as a blurred patch.
    - ``outer_images``: optional ``(B, S + 2m, S + 2m, 3)`` uint8, the result on ``outer_flow``'s canvas (``images``
      its middle), and ``outer_synthesised`` ``(B, S + 2m, S + 2m)``, ``synthesised`` on it: where the engine knew
      the photo around the crop, what full resolution pastes beyond the crop too (the background where the
      head moved away across the crop's edge).
    """

    images: np.ndarray
    flow: torch.Tensor | None
    synthesised: np.ndarray | None
    debug: dict[str, Any] = field(default_factory=dict)
    outer_flow: torch.Tensor | None = None
    margin: int = 0
    detail: np.ndarray | None = None
    detail_flow: torch.Tensor | None = None
    outer_images: np.ndarray | None = None
    outer_synthesised: np.ndarray | None = None


@dataclass
class Inspection:
    """Typed debug layers of one render (B = 1), for the studio's Inspect tab and the notebooks.

    Flows are backward (target pixel to source pixel) in normalised crop units (``core.coords``); masks are
    in [0, 1]. Layers an engine does not have stay None (or empty).
    """

    image: np.ndarray  # (S, S, 3) uint8, the rendered crop
    flow: torch.Tensor | None = None  # (1, 2, S, S) the flow the image was made with
    flow_label: str = "flow"  # what ``flow`` is, in words
    mesh_flow: torch.Tensor | None = None  # (1, 2, S, S) the flow of the meshes alone
    coverage: torch.Tensor | None = None  # (1, 1, S, S) pixels covered by the target mesh
    layer: torch.Tensor | None = None  # (1, 1, S, S) the engine's second layer ...
    layer_label: str = ""  # ... and what it is
    level_flows: dict[int, torch.Tensor] = field(default_factory=dict)  # {stride: (1, 2, h, w)}
    codes: torch.Tensor | None = None  # (1, C, S, S) neural codes on the target mesh
    code_mask: torch.Tensor | None = None  # (1, 1, S, S) where ``codes`` are defined
    codes_trained: bool = False  # learned codes (True) or an initial table
    warped_source: torch.Tensor | None = None  # (1, 3, S, S) the source warped by ``flow``
    synthesised: torch.Tensor | None = None  # (1, 1, S, S) pixels made up rather than warped by ``flow``
    notes: list[str] = field(default_factory=list)  # engine-specific remarks


class Engine(Protocol):
    """What every engine offers (``core.engines.registry`` builds them)."""

    name: str

    def prepare(
        self,
        crop_image: np.ndarray,
        params: FaceParams,
        photo: np.ndarray | None = None,
        around: np.ndarray | None = None,
    ) -> Any:
        """Per-source state from the RGB uint8 crop ``(S, S, 3)`` and its fitted parameters (B = 1).

        ``photo``: optional float mask ``(S + 2a, S + 2a)``, 1 where the photo goes on around the crop (the
        crop is its middle square; ``core.composite.around_crop``), 0 beyond the photo's edge; engines that
        move the photo's pixels hold its edge still. None: only what the crop shows is known. ``around``:
        optional, the photo around the crop itself (RGB uint8 ``(S + 2a, S + 2a, 3)``, same square), for
        engines that layer the head over the background beyond the crop too (``EngineResult.outer_images``)."""

    def render(self, state: Any, target: FaceParams, debug: bool = False) -> EngineResult:
        """Images for a batch of target parameters (``target.batch_size`` = B)."""

    def inspect(self, state: Any, target: FaceParams) -> Inspection:
        """The image for one target (B = 1) with the engine's debug layers."""


def prepare_around(
    engine: Engine, crop_image: np.ndarray, params: FaceParams, photo: np.ndarray, around: np.ndarray | None
) -> Any:
    """``engine.prepare`` with the photo around the crop: ``around`` too (None: not known) for engines whose
    ``prepare`` takes it (it came later; an engine written for ``prepare(crop_image, params, photo)`` keeps
    working)."""
    if around is not None and "around" in inspect.signature(engine.prepare).parameters:
        return engine.prepare(crop_image, params, photo, around=around)
    return engine.prepare(crop_image, params, photo)


def check_source(crop_image: np.ndarray, params: FaceParams) -> int:
    """Validate ``prepare``'s inputs (a square crop, one source); returns the crop side."""
    s = crop_image.shape[0]
    if crop_image.shape[:2] != (s, s):
        raise ValueError(f"the crop must be square, got {crop_image.shape[:2]}")
    if params.batch_size != 1:
        raise ValueError(f"prepare takes one source (B = 1), got B = {params.batch_size}")
    return s


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """RGB uint8 ``(H, W, 3)`` to float ``(1, 3, H, W)`` in [0, 1]."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.0


def tensor_to_images(x: torch.Tensor) -> np.ndarray:
    """Float ``(B, 3, H, W)`` in [0, 1] to RGB uint8 ``(B, H, W, 3)``."""
    return (x.clamp(0, 1) * 255.0).round().byte().permute(0, 2, 3, 1).cpu().numpy()
