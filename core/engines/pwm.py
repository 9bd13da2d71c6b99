"""The learned ``pwm`` engine: the PWM generator of ``core.model`` behind the ``Engine`` interface.

Weights: ``pwm.safetensors`` (the generator's state dict as the trainer exports it) plus ``pwm.json`` (format,
variant, preset, full generator config, training resolution). Searched, in order: the ``weights`` argument
(a folder or the JSON file), ``$GDPW_PWM_WEIGHTS``, the repository's ``weights/``, the user cache
(``~/.cache/gdpw``). Training writes both files into its ``out_dir`` at every checkpoint; copy them into
``weights/``. Loading checks the format, the requested variant/preset, the face model's vertex count and every
tensor name and shape, and says what is wrong (``PWMWeightsError``, a ``ValueError``).

Inference: spectral norm is folded into plain weights and BatchNorm uses its running statistics (``eval``).
``prepare`` caches the encoder features of the source (they do not depend on the target), ``render`` runs
the decoder for chunks of ``batch_size`` targets. A plain model synthesises every pixel, so ``flow`` and
``synthesised`` are None (the Animator pastes the whole crop back); the per-level flows, the geometric flow,
the warped source and the mesh coverage are in ``debug``.

A geometry-initialised model (``GeneratorConfig.geometry_init``) also needs the training-free geometry
engine's result for each target: the engine holds a ``GeometryEngine`` (given, or built on the same face
model), ``prepare`` prepares it on the crop at the model's size and ``render`` renders it for the targets and
feeds its complete flow and image to the generator (``debug`` then also holds ``geometry_image`` and
``geometry_flow``). Only the geometry engine's public ``prepare`` / ``render`` are used. Such a model's output
is ``alpha * rgb + (1 - alpha) * geometry image``, so its result carries the geometry engine's flow and a
``synthesised`` layer of ``max(alpha, the geometry engine's own)``: full-resolution output then moves the
photo's own pixels like the geometry engine and blends the generator's pixels in where it drew them, instead
of pasting a 256 px crop over a sharper photo.

``pwm.json`` may hold ``alpha_scale`` (in [0, 1], default 1): the factor by which the engine multiplies the
predicted alpha, a post-hoc calibration of how strongly a trained model paints over the geometry image
(``python -m core export-weights --alpha-scale``; the shipped model card says how its value was chosen).
``PWMEngine(alpha_scale=...)`` overrides it.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from core.engines.base import EngineResult, Inspection, check_source, image_to_tensor, tensor_to_images
from core.face.base import FaceModel
from core.face.params import FaceParams

__all__ = [
    "PWMEngine",
    "PWMWeightsError",
    "PWMState",
    "find_weights",
    "read_weights",
    "check_state_dict",
    "load_generator",
    "WEIGHTS_ENV",
    "TRAIN_HINT",
]

WEIGHTS_ENV = "GDPW_PWM_WEIGHTS"
TRAIN_HINT = (
    "restore the shipped ones ('git checkout -- weights/pwm.json weights/pwm.safetensors'), or train a model "
    "('python -m core train --config configs/cpu.json', after 'python -m core preprocess VIDEOS_DIR "
    "data/samples') and run 'python -m core export-weights <out_dir> weights/' (or point $GDPW_PWM_WEIGHTS "
    "at <out_dir>)"
)


class PWMWeightsError(ValueError):
    """Missing, incomplete or mismatched PWM weights; the message says where it looked and what differs."""


def _candidates(weights: str | Path | None, name: str) -> list[Path]:
    from core.assets import REPO_ROOT, user_cache_dir

    out = []
    if weights is not None:
        p = Path(weights).expanduser()
        out.append(p if p.suffix == ".json" else p / f"{name}.json")
        return out
    if os.environ.get(WEIGHTS_ENV):
        p = Path(os.environ[WEIGHTS_ENV]).expanduser()
        out.append(p if p.suffix == ".json" else p / f"{name}.json")
    out += [REPO_ROOT / "weights" / f"{name}.json", user_cache_dir() / f"{name}.json"]
    return out


def find_weights(weights: str | Path | None = None, name: str = "pwm") -> Path:
    """The first existing ``<name>.json`` of the search order; ``PWMWeightsError`` naming every place tried."""
    tried = _candidates(weights, name)
    for p in tried:
        if p.is_file():
            return p
    places = "\n  ".join(str(p) for p in tried)
    raise PWMWeightsError(
        f"no trained 'pwm' weights found (a {name}.json next to {name}.safetensors). Looked in:"
        f"\n  {places}\nTo get them, {TRAIN_HINT}."
    )


def read_weights(meta_path: str | Path) -> tuple[Any, dict[str, torch.Tensor], dict[str, Any]]:
    """Read a ``pwm.json`` and the safetensors file it names: ``(GeneratorConfig, state dict, meta)``.
    ``PWMWeightsError`` for an unreadable or foreign JSON, an invalid generator config, a missing weights file
    or one that is not a complete safetensors file (truncated, another format: never unpickled)."""
    from safetensors.torch import load_file

    from core.model import GeneratorConfig, check_alpha_scale

    meta_path = Path(meta_path)
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PWMWeightsError(f"{meta_path} is not a readable PWM config: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != "gdpw-pwm" or "generator" not in meta:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise PWMWeightsError(
            f"{meta_path} is not a PWM weights config (format {got!r}, expected 'gdpw-pwm' with a 'generator' section)"
        )
    try:
        cfg = GeneratorConfig.from_dict(meta["generator"])
    except (TypeError, ValueError) as exc:
        raise PWMWeightsError(f"{meta_path}: invalid generator config: {exc}") from None
    try:
        check_alpha_scale(meta.get("alpha_scale", 1.0))
    except ValueError as exc:
        raise PWMWeightsError(f"{meta_path}: {exc}") from None
    wpath = meta_path.with_name(meta.get("weights", meta_path.stem + ".safetensors"))
    if not wpath.is_file():
        raise PWMWeightsError(f"{meta_path} names weights {wpath}, which does not exist")
    try:
        state = load_file(str(wpath))
    except Exception as exc:  # truncated, corrupt or not safetensors
        raise PWMWeightsError(
            f"{wpath} is not a readable safetensors file ({wpath.stat().st_size} bytes; truncated or another "
            f"format?): {exc}"
        ) from None
    return cfg, state, meta


def check_state_dict(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], where: str | Path, cfg) -> None:
    """``PWMWeightsError`` unless ``state`` has exactly the tensor names and shapes of ``own`` (a generator's
    state dict), naming what is missing, unexpected or of another shape."""
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or extra or shapes:
        detail = []
        if missing:
            detail.append(f"{len(missing)} tensors missing (e.g. {missing[:3]})")
        if extra:
            detail.append(f"{len(extra)} unexpected tensors (e.g. {extra[:3]})")
        if shapes:
            detail.append(f"{len(shapes)} shape mismatches (e.g. {shapes[:2]})")
        raise PWMWeightsError(
            f"{where} does not match the '{cfg.variant}' / '{cfg.preset}' generator it describes: "
            + "; ".join(detail)
            + ". The weights probably come from another variant or preset."
        )


def load_generator(
    meta_path: str | Path,
    model: FaceModel,
    variant: str | None = None,
    preset: str | None = None,
    device: str | torch.device = "cpu",
    fold: bool = True,
):
    """Build the generator described by ``meta_path`` (JSON), load and check its weights; returns
    ``(generator, meta)``. ``variant`` / ``preset``, when given, must match the file."""
    from core.model import Generator, fold_spectral_norm

    meta_path = Path(meta_path)
    cfg, state, meta = read_weights(meta_path)
    if variant is not None and cfg.variant != variant:
        raise PWMWeightsError(f"{meta_path} holds a '{cfg.variant}' model, but variant '{variant}' was requested")
    if preset is not None and cfg.preset != preset:
        raise PWMWeightsError(f"{meta_path} holds a '{cfg.preset}' preset model, but preset '{preset}' was requested")
    if cfg.num_vertices != model.n_vertices:
        raise PWMWeightsError(
            f"{meta_path} was trained for a {cfg.face_model} mesh with {cfg.num_vertices} vertices; "
            f"the face model in use has {model.n_vertices}"
        )
    gen = Generator(cfg, model.render_faces)
    check_state_dict(
        gen.state_dict(), state, meta_path.with_name(meta.get("weights", meta_path.stem + ".safetensors")), cfg
    )
    gen.load_state_dict(state)
    if fold:
        fold_spectral_norm(gen)
    return gen.to(device).eval(), meta


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, C, s, s)`` -> ``(B, C, size, size)`` bilinear (flows are in normalised units: values unchanged)."""
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def _rescaled_around(around: np.ndarray, size: int, new_size: int) -> np.ndarray:
    """A mask ``(size + 2a, size + 2a)`` or an image ``(size + 2a, size + 2a, C)`` around a crop of ``size``
    pixels, for the same crop at ``new_size`` (float32)."""
    a = round((around.shape[0] - size) / 2 * new_size / size)
    n = new_size + 2 * a
    return cv2.resize(np.asarray(around, np.float32), (n, n), interpolation=cv2.INTER_AREA)


def _over_geometry(images: np.ndarray, alpha: torch.Tensor, geo: list[EngineResult], size: int) -> EngineResult:
    """The result of a geometry-initialised model at the caller's crop ``size``: its images, the geometry
    engine's flows (grown canvas included) and ``synthesised = max(alpha, the geometry engine's)``."""
    flow = torch.cat([r.flow for r in geo]).float()
    synth = torch.cat([torch.from_numpy(np.asarray(r.synthesised, np.float32))[:, None] for r in geo])
    synth = torch.maximum(synth, alpha.to(synth.dtype))
    outer, margin = None, 0
    if all(r.outer_flow is not None and r.margin > 0 for r in geo):
        s = flow.shape[-1]
        margin = int(round(geo[0].margin * size / s))
        outer = _resize(torch.cat([r.outer_flow for r in geo]).float(), size + 2 * margin)
    flow = _resize(flow, size)
    synth = _resize(synth, size).clamp(0, 1)[:, 0].numpy()
    result = EngineResult(images, flow, synth, outer_flow=outer, margin=margin)
    if outer is not None and all(r.outer_images is not None and r.outer_synthesised is not None for r in geo):
        # beyond the crop, the geometry engine's layer over its background plate; the model's images inside
        n = size + 2 * margin
        ring = torch.from_numpy(np.concatenate([r.outer_images for r in geo])).permute(0, 3, 1, 2).float()
        ring = _resize(ring, n).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
        ring_synth = torch.from_numpy(np.concatenate([r.outer_synthesised for r in geo]).astype(np.float32))
        ring_synth = _resize(ring_synth[:, None], n).clamp(0, 1)[:, 0].numpy()
        ring[:, margin : margin + size, margin : margin + size] = images
        ring_synth[:, margin : margin + size, margin : margin + size] = synth
        result.outer_images, result.outer_synthesised = ring, ring_synth
    return result


@dataclass
class PWMState:
    crop: torch.Tensor  # (1, 3, S, S) [0, 1] at the engine's size
    params: FaceParams
    v_src: torch.Tensor  # (1, N, 3) normalised
    enc: dict[int, torch.Tensor]  # cached encoder / shortcut features
    out_size: int  # the caller's crop size
    geometry: Any = None  # the geometry engine's state (geometry_init models), at the model's size


class PWMEngine:
    """Learned engine. ``weights``: a folder or JSON path (default: the search order above); ``variant`` /
    ``preset``: required values (a mismatch is an error); ``batch_size``: targets per decoder call;
    ``device``: default CUDA when available; ``geometry``: the ``GeometryEngine`` a geometry-initialised model
    uses (default: one built on ``model``, CPU); ``alpha_scale``: the blend calibration (default: the weights
    file's ``alpha_scale``, else 1)."""

    name = "pwm"

    def __init__(
        self,
        model: FaceModel,
        weights: str | Path | None = None,
        variant: str | None = None,
        preset: str | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 16,
        geometry=None,
        alpha_scale: float | None = None,
    ) -> None:
        self.model = model
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.meta_path = find_weights(weights)
        self.generator, self.meta = load_generator(self.meta_path, model, variant, preset, self.device)
        self.size = int(self.meta.get("size", 256))
        from core.model import check_alpha_scale

        self.alpha_scale = check_alpha_scale(self.meta.get("alpha_scale", 1.0) if alpha_scale is None else alpha_scale)
        self.batch_size = batch_size
        self.geometry = None
        if self.generator.config.geometry_init:
            if geometry is None:
                from core.engines.geometry import GeometryEngine

                geometry = GeometryEngine(model)
            self.geometry = geometry
        if self.model.faces.device != self.device:
            # a private copy on the engine's device: the caller's model may be shared (studio sessions)
            self.model = copy.deepcopy(model).to(self.device)

    @property
    def variant(self) -> str:
        return self.generator.config.variant

    def with_alpha_scale(self, alpha_scale: float) -> PWMEngine:
        """This engine with another blend calibration, sharing its generator, face model and geometry engine
        (several scales compared without loading the weights again)."""
        from core.model import check_alpha_scale

        twin = copy.copy(self)
        twin.alpha_scale = check_alpha_scale(alpha_scale)
        return twin

    def project(self, params: FaceParams) -> torch.Tensor:
        """``(B, N, 3)`` normalised crop coordinates and depth (resolution independent)."""
        params = params.to(self.device)
        return self.model.project(self.model(params), params.camera).float()

    @torch.no_grad()
    def prepare(
        self,
        crop_image: np.ndarray,
        params: FaceParams,
        photo: np.ndarray | None = None,
        around: np.ndarray | None = None,
    ) -> PWMState:
        s = check_source(crop_image, params)
        crop = image_to_tensor(crop_image).to(self.device)
        if s != self.size:
            crop = F.interpolate(
                crop,
                size=(self.size, self.size),
                mode="area" if s > self.size else "bilinear",
                align_corners=None if s > self.size else False,
            )
        v_src = self.project(params)
        g = self.generator
        codes = g.source_codes(v_src, (self.size, self.size))
        enc = g.encode(crop, codes)
        geo = None
        if self.geometry is not None:  # the geometry engine sees the crop the generator sees
            if s != self.size:
                crop_image = tensor_to_images(crop.cpu())[0]
                photo = None if photo is None else _rescaled_around(photo, s, self.size)
                around = None if around is None else _rescaled_around(around, s, self.size).round().astype(np.uint8)
            geo = self.geometry.prepare(crop_image, params, photo, around)
        return PWMState(crop, params.detach().clone(), v_src, enc, s, geo)

    def _geometry_input(self, state: PWMState, target: FaceParams):
        """The geometry engine's ``EngineResult`` for ``target`` (B targets) and its ``GeometryInput`` on the
        engine's device."""
        from core.model import GeometryInput

        res = self.geometry.render(state.geometry, target.to("cpu"))
        image = torch.from_numpy(res.images).permute(0, 3, 1, 2).float().div(255.0)
        return res, GeometryInput(res.flow.float().to(self.device), image.to(self.device))

    @torch.no_grad()
    def render(self, state: PWMState, target: FaceParams, debug: bool = False) -> EngineResult:
        g = self.generator
        v_tgt = self.project(target)
        outs, geo_results = [], []
        for i in range(0, v_tgt.shape[0], self.batch_size):
            v = v_tgt[i : i + self.batch_size]
            guid = g.guidance(state.v_src, v, (self.size, self.size))
            geo = None
            if self.geometry is not None:
                res, geo = self._geometry_input(state, target[i : i + self.batch_size])
                geo_results.append(res)
            outs.append(g.decode(state.enc, guid, state.crop, geo, alpha_scale=self.alpha_scale))
        y = torch.cat([o["y_hat"] for o in outs])
        if state.out_size != self.size:
            y = F.interpolate(y, size=(state.out_size, state.out_size), mode="bilinear", align_corners=False)
        if geo_results:
            alpha = torch.cat([o["alpha"] for o in outs]).float().cpu()
            result = _over_geometry(tensor_to_images(y), alpha, geo_results, state.out_size)
        else:
            result = EngineResult(tensor_to_images(y), None, None)
        if debug:
            cat = lambda key: torch.cat([o[key] for o in outs]).cpu()  # noqa: E731
            result.debug = {
                "flows": {s: torch.cat([o["flows"][s] for o in outs]).cpu() for s in outs[0]["flows"]},
                "flow": torch.cat([o["flows"][1] for o in outs]).cpu(),
                "mesh_flow": cat("geom_flow"),
                "coverage": cat("mask"),
                "warped_source": cat("warped_src"),
                "alpha": cat("alpha"),
                "variant": self.variant,
            }
            if self.geometry is not None:
                result.debug["geometry_image"] = torch.cat([o["geometry_image"] for o in outs]).cpu()
                result.debug["geometry_flow"] = torch.cat([o["geometry_flows"][1] for o in outs]).cpu()
        return result

    @torch.no_grad()
    def inspect(self, state: PWMState, target: FaceParams) -> Inspection:
        """The render with its per-level flows, blend mask and the learned codes on the target mesh."""
        from core.render.raster import rasterize

        target = target[:1] if target.batch_size > 1 else target
        result = self.render(state, target, debug=True)
        dbg = result.debug
        out = Inspection(
            image=result.images[0],
            flow=dbg["flow"],
            flow_label="the generator's final flow",
            mesh_flow=dbg["mesh_flow"],
            coverage=dbg["coverage"],
            layer=dbg["alpha"],
            layer_label="pixels the generator synthesises (its blend mask)",
            level_flows=dbg["flows"],
            warped_source=dbg["warped_source"],
            notes=[f"learned model, variant {self.variant}"]
            + (
                [
                    "geometry-initialised: flows are residuals over the geometry engine's flow, the output is "
                    "blended over its image by the alpha layer"
                ]
                if self.geometry is not None
                else []
            ),
        )
        embeds = self.generator.embeds
        if embeds is not None:
            proj = self.project(target)
            frags = rasterize(proj, self.generator.faces, (self.size, self.size))
            out.codes, out.code_mask, out.codes_trained = embeds(fragments=frags).cpu(), frags.mask.cpu(), True
        return out
