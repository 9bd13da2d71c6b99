"""The PWM generator (design doc ``gdpw-model.md`` sections 2, 5 and 6): encoder, bottleneck warp, progressive
warping modules (SPADE residual block + flow head + up block per level) and the output conv.

Shapes for an input of ``S x S`` (S divisible by the coarsest stride ``2 ** (levels - 1)``):

- ``x_s``: ``(B, 3, S, S)`` source image in [0, 1].
- ``v_s``, ``v_d``: ``(B, N, 3)`` projected source / driving vertices: x, y in normalised image coordinates
  (``core.coords``: pixel centres at ``(2c + 1) / W - 1``, y down) and depth (smaller = nearer).
- Flows are backward offsets ``(B, 2, H, W)`` in normalised units (``core.coords``); ``warp`` samples at the
  pixel-centre grid plus the flow with ``grid_sample(align_corners=False)``, so a zero flow is an exact
  identity.

Deliberate differences from the official code (spec section 12), also listed in the README:

1. **Grid convention** (12.14): the official warp adds flows to an align-corners-TRUE identity grid but samples
   with ``align_corners=False`` and converts flow-head pixels with ``2 / (W' - 1)``. We use one convention
   throughout: pixel-centre grid, ``align_corners=False``, flow-head pixels converted with ``2 / W'``. Hence
   (12.7) the neural-codes bottleneck "warp with a zero flow" is an exact copy, as the paper describes.
2. **Face model**: the ICT mesh (26 719 vertices) instead of FLAME (5 023): the code table is 26 719 x 16
   (427 504 parameters instead of 80 368), so the official preset has 142.16 M parameters instead of the
   spec's 141.81 M (+0.25 %).
3. **Presets**: ``official`` = 6 scales (widths 32 ... 1024, with the dead 1024-channel shortcut block kept
   for parameter parity, 12.8); ``paper`` = 5 scales (256 ... 16 px, widths 32 ... 512; four flows applied at
   32 ... 256 px), our reading of the paper's "5 pyramid levels" (12.1); ``small`` / ``tiny`` are reduced
   widths for CPU work and tests. The dead shortcut is only built when ``keep_unused_shortcut`` is set.
4. **Residual flow** (option ``residual_flow``, off in ``paper`` and ``official``): each flow head predicts a
   residual added to the Gaussian-downsampled geometric flow at the level where the flow is applied, and the
   head starts at zero, so an untrained model starts as the geometric warp. It converges faster on little
   data. The geometric flow is available in every variant (the vertices are always given), also in
   ``neural_codes`` where it is otherwise unused.
5. **Geometry initialisation** (option ``geometry_init``, off in ``paper`` and ``official``, on in the shipped
   CPU model ``configs/cpu.json``): the model also takes the training-free geometry engine's output
   (``GeometryInput``: its *complete* backward flow, i.e. the mesh displacement field plus the harmonic
   fill of hair, neck and background, and its image, the warped person over the background plate with
   the synthesised mouth). Each flow head predicts a residual over the Gaussian-downsampled complete flow
   of its level, and the output is ``alpha * rgb + (1 - alpha) * geometry image``. Flow heads start at
   zero and the alpha logit at ``ALPHA_INIT_BIAS`` with zero weights (alpha = 0.0025), so an untrained
   model renders the geometry engine's image (within 1/255) and training starts from its quality. Encoder,
   neural codes, SPADE decoder and the per-level flows are the paper's, and stay inspectable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.coords import flow_from_pixels, pixel_grid
from core.model.blocks import ConvBlock, DownBlock, SPADEResBlock, UpBlock, conv
from core.render import NeuralCodes, gaussian_downsample, interpolate, rasterize

__all__ = [
    "VARIANTS",
    "PRESETS",
    "GeneratorConfig",
    "GeometryInput",
    "Generator",
    "check_alpha_scale",
    "warp",
    "count_parameters",
]

VARIANTS = ("neural_codes", "geom_disp", "both")
ICT_VERTICES = 26719
# initial alpha logit of a geometry-initialised model: sigmoid(-6) = 0.0025, i.e. at most 0.64/255 away
# from the geometry engine's image; Adam's steps do not shrink with the sigmoid's small slope
ALPHA_INIT_BIAS = -6.0


def check_alpha_scale(value: Any) -> float:
    """``value`` as a float if it is a valid blend calibration (a number in [0, 1]); ``ValueError`` if not.
    ``Generator.decode`` takes it; a ``pwm.json`` may record it (``core.engines.pwm``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"alpha_scale must be a number in [0, 1], got {value!r}")
    return float(value)


# Width presets. NF(s) = min(ch_max, max(ch_min, ch_base * s)) for stride s = 1, 2, 4, ...
PRESETS: dict[str, dict[str, Any]] = {
    # the released code: 6 scales, 32 ... 1024 channels, 142 M parameters (141.8 M with FLAME's code table)
    "official": dict(levels=6, ch_base=32, ch_max=1024, ch_min=16, keep_unused_shortcut=True),
    # the paper's "5 pyramid levels": 5 scales, 32 ... 512 channels
    "paper": dict(levels=5, ch_base=32, ch_max=1024, ch_min=16, keep_unused_shortcut=False),
    # reduced widths for CPU experiments and tests
    "small": dict(levels=5, ch_base=16, ch_max=256, ch_min=16, keep_unused_shortcut=False),
    "tiny": dict(levels=4, ch_base=8, ch_max=64, ch_min=8, keep_unused_shortcut=False),
}


@dataclass
class GeneratorConfig:
    """Everything that fixes the generator's weights layout (saved next to the weights as JSON).

    ``variant``: guidance (``neural_codes``, ``geom_disp`` or ``both``); ``preset``: the width preset it was
    made from (informational once the widths below are set); ``levels``: number of encoder scales;
    ``ch_base`` / ``ch_max`` / ``ch_min``: channel widths; ``code_dim``: neural code channels;
    ``num_vertices``: mesh size (26 719 for ICT); ``residual_flow``: flows = geometric flow + learned residual;
    ``alpha_blend``: blend the RGB output with the warped source by the predicted alpha (off, as in the
    official config); ``geometry_init``: take the geometry engine's complete flow and image as inputs, predict
    flow residuals over that flow and alpha-blend the output over that image, initialised to reproduce it
    (module docstring, item 5; excludes ``residual_flow`` and ``alpha_blend``); ``keep_unused_shortcut``:
    build the coarsest shortcut block the official code never uses (parameter parity only).
    """

    variant: str = "neural_codes"
    preset: str = "paper"
    levels: int = 5
    ch_base: int = 32
    ch_max: int = 1024
    ch_min: int = 16
    code_dim: int = 16
    num_vertices: int = ICT_VERTICES
    face_model: str = "ict"
    residual_flow: bool = False
    alpha_blend: bool = False
    geometry_init: bool = False
    keep_unused_shortcut: bool = False

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown generator variant '{self.variant}'; choose one of {VARIANTS}")
        if self.levels < 2:
            raise ValueError(f"levels must be >= 2, got {self.levels}")
        if self.geometry_init and (self.residual_flow or self.alpha_blend):
            raise ValueError(
                "geometry_init already makes the flows residuals (over the geometry engine's flow) and blends "
                "over the geometry engine's image; leave residual_flow and alpha_blend off with it"
            )

    @classmethod
    def from_preset(cls, preset: str = "paper", variant: str = "neural_codes", **overrides: Any) -> GeneratorConfig:
        if preset not in PRESETS:
            raise ValueError(f"unknown generator preset '{preset}'; choose one of {sorted(PRESETS)}")
        return cls(variant=variant, preset=preset, **{**PRESETS[preset], **overrides})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown generator config keys {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def uses_codes(self) -> bool:
        return self.variant in ("neural_codes", "both")

    @property
    def uses_geometry(self) -> bool:
        return self.variant in ("geom_disp", "both")

    @property
    def strides(self) -> list[int]:
        return [2**k for k in range(self.levels)]

    @property
    def top(self) -> int:
        return 2 ** (self.levels - 1)

    def width(self, s: int) -> int:
        return int(min(self.ch_max, max(self.ch_min, self.ch_base * s)))

    @property
    def in_channels(self) -> int:
        return 3 + (self.code_dim if self.uses_codes else 0)

    @property
    def mod_channels(self) -> int:
        return (self.code_dim if self.uses_codes else 0) + (2 if self.uses_geometry else 0)


@dataclass
class GeometryInput:
    """The training-free geometry engine's result for B targets, the extra input of a ``geometry_init`` model.

    - ``flow (B, 2, S, S)``: its complete backward flow (normalised units, ``core.coords``): the mesh
      displacement field extended over hair, neck and background;
    - ``image (B, 3, S, S)``: its output in [0, 1] (warped person over the background plate, synthesised mouth).
    """

    flow: torch.Tensor
    image: torch.Tensor

    def check(self, batch: int, size: tuple[int, int]) -> None:
        for name, t, c in (("flow", self.flow, 2), ("image", self.image, 3)):
            if t.dim() != 4 or t.shape[0] != batch or t.shape[1] != c or tuple(t.shape[-2:]) != tuple(size):
                raise ValueError(f"geometry {name} must be ({batch}, {c}, {size[0]}, {size[1]}), got {tuple(t.shape)}")


def warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp ``x (B, C, H, W)`` by ``flow (B, 2, H, W)`` (normalised units, ``core.coords``): bilinear,
    zero padding, pixel-centre grid with ``align_corners=False`` (zero flow = identity). Runs in float32."""
    if flow.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"flow is {tuple(flow.shape[-2:])}, features are {tuple(x.shape[-2:])}")
    if flow.shape[0] != x.shape[0]:
        x = x.expand(flow.shape[0], -1, -1, -1)
    with torch.autocast(device_type=x.device.type, enabled=False):
        grid = pixel_grid(tuple(x.shape[-2:]), device=x.device)[None] + flow.float().permute(0, 2, 3, 1)
        out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.to(x.dtype)


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters (conv weights and biases, BN gamma/beta, code table); buffers excluded."""
    return sum(p.numel() for p in module.parameters())


class Generator(nn.Module):
    """PWM generator ``G(x_s, v_s, v_d)``; see the module docstring. ``faces`` is the ``(F, 3)`` long triangle
    list used to rasterise the guidance (``model.render_faces``); it may be omitted to build the module for
    counting (e.g. on the meta device), then ``forward`` needs it.

    Module names follow the official code (``down_layers.x{s}``, ``shortcut_layers.x{s}``,
    ``up_layers.x{s}_{spade|flow|up}``, ``up_layers.x1_out``, ``embeds``).
    """

    def __init__(self, config: GeneratorConfig, faces: torch.Tensor | None = None) -> None:
        super().__init__()
        self.config = cfg = config
        nf = cfg.width
        self.down_layers = nn.ModuleDict()
        self.shortcut_layers = nn.ModuleDict()
        self.up_layers = nn.ModuleDict()
        for s in cfg.strides:
            self.down_layers[f"x{s}"] = ConvBlock(cfg.in_channels, nf(1)) if s == 1 else DownBlock(nf(s // 2), nf(s))
            if s != cfg.top or cfg.keep_unused_shortcut:
                self.shortcut_layers[f"x{s}"] = ConvBlock(nf(s), nf(s))
        for s in reversed(cfg.strides[1:]):
            self.up_layers[f"x{s}_spade"] = SPADEResBlock(2 * nf(s), nf(s), cfg.mod_channels, nf(s))
            self.up_layers[f"x{s}_flow"] = conv(nf(s), 2, sn=False)
            self.up_layers[f"x{s}_up"] = UpBlock(nf(s), nf(s // 2))
            if cfg.residual_flow or cfg.geometry_init:
                nn.init.zeros_(self.up_layers[f"x{s}_flow"].weight)
                nn.init.zeros_(self.up_layers[f"x{s}_flow"].bias)
        self.up_layers["x1_out"] = conv(2 * nf(1), 4, sn=False)
        if cfg.geometry_init:  # alpha starts at ~0 whatever the features: the output is the geometry image
            with torch.no_grad():
                self.up_layers["x1_out"].weight[3:].zero_()
                self.up_layers["x1_out"].bias[3:].fill_(ALPHA_INIT_BIAS)
        self.embeds = NeuralCodes(cfg.num_vertices, cfg.code_dim) if cfg.uses_codes else None
        self.register_buffer(
            "faces",
            torch.as_tensor(faces, dtype=torch.long) if faces is not None else torch.zeros(0, 3, dtype=torch.long),
            persistent=False,
        )

    # ------------------------------------------------------------------ guidance
    def _check_vertices(self, v: torch.Tensor, name: str) -> None:
        if v.dim() != 3 or v.shape[-1] != 3 or v.shape[1] != self.config.num_vertices:
            raise ValueError(f"{name} must be (B, {self.config.num_vertices}, 3), got {tuple(v.shape)}")

    @torch.no_grad()
    def _raster(self, v: torch.Tensor, size: tuple[int, int]):
        if self.faces.numel() == 0:
            raise RuntimeError("this Generator was built without a face list; pass faces=model.render_faces")
        return rasterize(v.float(), self.faces, size)

    def source_codes(self, v_s: torch.Tensor, size: tuple[int, int], fragments=None) -> torch.Tensor | None:
        """Source-posed codes ``C_s (B, code_dim, H, W)``, or None for ``geom_disp``."""
        if not self.config.uses_codes:
            return None
        self._check_vertices(v_s, "v_s")
        frags = fragments if fragments is not None else self._raster(v_s, size)
        with torch.autocast(device_type=v_s.device.type, enabled=False):
            return self.embeds(fragments=frags)

    def guidance(self, v_s: torch.Tensor, v_d: torch.Tensor, size: tuple[int, int], fragments=None) -> dict[str, Any]:
        """Driving-side guidance: ``geom_flow (B, 2, H, W)`` (``F_geo``, no gradient), ``mask (B, 1, H, W)``,
        ``codes_drv`` (or None), ``mesh_flows {s: F_geo downsampled}`` for every stride and the SPADE maps
        ``modulation {s: (B, mod_channels, H/s, W/s)}`` for strides 2 ... top (spec 5.5)."""
        cfg = self.config
        self._check_vertices(v_d, "v_d")
        if v_s.shape[0] not in (1, v_d.shape[0]):
            raise ValueError(f"v_s batch {v_s.shape[0]} does not match v_d batch {v_d.shape[0]}")
        frags = fragments if fragments is not None else self._raster(v_d, size)
        with torch.autocast(device_type=v_d.device.type, enabled=False):
            with torch.no_grad():
                disp = (v_s[..., :2].float() - v_d[..., :2].float()).expand(v_d.shape[0], -1, -1)
                geom = interpolate(disp, frags).contiguous()
            codes = self.embeds(fragments=frags).contiguous() if cfg.uses_codes else None
            parts = ([codes] if cfg.uses_codes else []) + ([geom] if cfg.uses_geometry else [])
            full = torch.cat(parts, 1)
            modulation = {s: gaussian_downsample(full, s) for s in cfg.strides[1:]}
            with torch.no_grad():
                mesh_flows = {s: gaussian_downsample(geom, s) for s in cfg.strides}
        return dict(geom_flow=geom, mask=frags.mask, codes_drv=codes, mesh_flows=mesh_flows, modulation=modulation)

    # ------------------------------------------------------------------ network
    def encode(self, x_s: torch.Tensor, codes_src: torch.Tensor | None = None) -> dict[int, torch.Tensor]:
        """Encoder features ``{s: E_s}`` (stride s, ``(B, NF(s), S/s, S/s)``); skip features already pass
        through their shortcut block (``S_s(E_s)`` for s < top), the coarsest is ``E_top`` itself. Depends only
        on the source, so engines cache it."""
        cfg = self.config
        top = cfg.top
        if x_s.shape[-1] % top or x_s.shape[-2] % top:
            raise ValueError(f"image size {tuple(x_s.shape[-2:])} must be divisible by {top} ({cfg.levels} levels)")
        h = torch.cat([x_s, codes_src.to(x_s.dtype)], 1) if cfg.uses_codes else x_s
        if h.shape[1] != cfg.in_channels:
            raise ValueError(f"encoder expects {cfg.in_channels} channels, got {h.shape[1]}")
        out = {}
        for s in cfg.strides:
            h = self.down_layers[f"x{s}"](h)
            out[s] = self.shortcut_layers[f"x{s}"](h) if s != top else h
        return out

    def geometry_flows(self, geometry: GeometryInput) -> dict[int, torch.Tensor]:
        """``{s: (B, 2, S/s, S/s)}``: the geometry engine's complete flow Gaussian-downsampled to every stride
        (the base the flow heads of a ``geometry_init`` model add their residuals to)."""
        with torch.no_grad(), torch.autocast(device_type=geometry.flow.device.type, enabled=False):
            return {s: gaussian_downsample(geometry.flow.float(), s) for s in self.config.strides}

    def decode(
        self,
        enc: dict[int, torch.Tensor],
        guid: dict[str, Any],
        x_s: torch.Tensor | None = None,
        geometry: GeometryInput | None = None,
        alpha_scale: float = 1.0,
    ) -> dict[str, Any]:
        """Decoder from cached encoder features (batch 1 or B), ``guidance`` (batch B) and, for a
        ``geometry_init`` model, the geometry engine's ``GeometryInput`` (batch B). Returns the output dict
        described in ``forward``. ``alpha_scale`` in [0, 1] multiplies the predicted alpha before blending
        (an inference-time calibration of a trained blending model; training uses 1)."""
        check_alpha_scale(alpha_scale)
        cfg = self.config
        top = cfg.top
        b = guid["geom_flow"].shape[0]
        mod = guid["modulation"]
        base = guid["mesh_flows"]
        if cfg.geometry_init:
            if geometry is None:
                raise ValueError("a geometry_init generator needs the geometry engine's flow and image (geometry=)")
            geometry.check(b, tuple(guid["geom_flow"].shape[-2:]))
            base = self.geometry_flows(geometry)
        e_top = enc[top].expand(b, -1, -1, -1) if enc[top].shape[0] != b else enc[top]
        g_top = mod[top][:, -2:] if cfg.uses_geometry else torch.zeros_like(base[top])
        h = torch.cat([e_top, warp(e_top, g_top)], 1)
        flows: dict[int, torch.Tensor] = {}
        for s in reversed(cfg.strides[1:]):
            if s != top:
                h = torch.cat([h, warp(enc[s], flows[s])], 1)
            h = self.up_layers[f"x{s}_spade"](h, mod[s])
            d = self.up_layers[f"x{s}_flow"](h)
            with torch.autocast(device_type=h.device.type, enabled=False):
                d = F.interpolate(d.float(), scale_factor=2.0, mode="bilinear", align_corners=False)
                f = flow_from_pixels(d)  # pixels of the upsampled grid -> normalised (2 / W')
                if cfg.residual_flow or cfg.geometry_init:
                    f = f + base[s // 2]
            flows[s // 2] = f
            h = self.up_layers[f"x{s}_up"](h)
        h = torch.cat([h, warp(enc[1], flows[1])], 1)
        with torch.autocast(device_type=h.device.type, enabled=False):
            o = torch.sigmoid(self.up_layers["x1_out"](h.float()))
        rgb, alpha = o[:, :3], o[:, 3:]
        if alpha_scale != 1.0:
            alpha = alpha * alpha_scale
        out: dict[str, Any] = dict(
            rgb=rgb,
            alpha=alpha,
            flows=flows,
            mesh_flows=guid["mesh_flows"],
            geom_flow=guid["geom_flow"],
            mask=guid["mask"],
            codes_drv=guid["codes_drv"],
        )
        if x_s is not None:
            out["warped_src"] = warp(x_s.float(), flows[1])
        if cfg.geometry_init:
            out["geometry_flows"] = base
            out["geometry_image"] = geometry.image
            out["y_hat"] = alpha * rgb + (1.0 - alpha) * geometry.image.float()
        elif cfg.alpha_blend:
            if x_s is None:
                raise ValueError("alpha_blend needs x_s")
            out["y_hat"] = alpha * rgb + (1.0 - alpha) * out["warped_src"]
        else:
            out["y_hat"] = rgb
        return out

    def forward(
        self, x_s: torch.Tensor, v_s: torch.Tensor, v_d: torch.Tensor, geometry: GeometryInput | None = None
    ) -> dict[str, Any]:
        """``G(x_s, v_s, v_d)`` (spec 6.8); a ``geometry_init`` model also takes ``geometry``, the geometry
        engine's flow and image for the B targets. Returns a dict:

        - ``y_hat (B, 3, S, S)``: the output in [0, 1] (= ``rgb`` unless ``alpha_blend``; with
          ``geometry_init``, ``rgb`` alpha-blended over the geometry image);
        - ``rgb``, ``alpha (B, 1, S, S)``: sigmoid outputs (``alpha`` times ``decode``'s ``alpha_scale``);
        - ``warped_src (B, 3, S, S)``: ``x_s`` warped by the finest flow (auxiliary losses);
        - ``flows {s: (B, 2, S/s, S/s)}``: predicted flows keyed by the stride where they are applied
          (``s = top/2 ... 1``; ``flows[1]`` is the final flow), normalised units;
        - ``mesh_flows {s: ...}``: the Gaussian-downsampled geometric flow ``F_geo`` at every stride;
        - ``geom_flow (B, 2, S, S)``, ``mask (B, 1, S, S)``: ``F_geo`` and the driving mesh coverage;
        - ``codes_src``, ``codes_drv (B, code_dim, S, S)``: posed neural codes (None for ``geom_disp``);
        - with ``geometry_init`` also ``geometry_flows {s: ...}`` (the complete flow per stride, the base of
          ``flows``) and ``geometry_image (B, 3, S, S)``.
        """
        size = tuple(x_s.shape[-2:])
        self._check_vertices(v_s, "v_s")
        codes_src = self.source_codes(v_s, size)
        enc = self.encode(x_s, codes_src)
        out = self.decode(enc, self.guidance(v_s, v_d, size), x_s, geometry)
        out["codes_src"] = codes_src
        return out
