"""The training-free ``geometry`` engine: warp the source pixels with the rasterised displacement field.

Per target (all on the S x S crop, flows in normalised crop units, see ``core.coords``):
1. Project source and target meshes; rasterise the target mesh; interpolate ``P(src) - P(tgt)`` per pixel:
   the backward flow on the face, head and neck (the paper's geometric displacement field).
2. Outside the mesh the flow is extended by harmonic interpolation (``core.engines.fill``): pixels of the
   person (selfie segmentation) near the head (hair, ears, the rest of the neck) are free; the background
   and the body far from the head are held at zero flow. Hair therefore follows the head while the
   background stays still.
3. The crop is warped, and composed as a layer over a *background plate*: the source with the person
   region filled in harmonically (a smooth membrane). Where the head turns away and reveals background,
   the warped person mask is 0 and the plate shows through instead of smeared face pixels.
4. The inside of the mouth: target pixels drawn by the mouth socket, teeth, gums or tongue of the mesh
   whose source location was not mouth interior (the mouth opened) are synthesised: teeth light, gums
   and tongue dark red, the socket nearly black, darkened with depth and feathered at the lips. Where the
   source mouth was already open, its own pixels are warped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.coords import pixel_grid
from core.engines.base import EngineResult, Inspection, check_source, image_to_tensor, tensor_to_images
from core.engines.fill import harmonic_fill
from core.engines.person import PersonSegmenter
from core.face.base import FaceModel
from core.face.params import FaceParams
from core.render.interpolate import interpolate
from core.render.raster import Fragments, rasterize

# Mouth interior categories drawn by the engine (0 = ordinary surface), and their RGB colours in [0, 1].
MOUTH_PARTS = {"mouth_socket": 1, "teeth": 2, "gums_tongue": 3}
MOUTH_COLOURS = torch.tensor([[0.0, 0.0, 0.0], [0.10, 0.03, 0.03], [0.86, 0.83, 0.76], [0.45, 0.16, 0.16]])


@dataclass
class GeometryState:
    """What ``prepare`` caches for one source crop."""

    crop: torch.Tensor  # (1, 3, S, S) in [0, 1]
    params: FaceParams  # the source fit, B = 1
    src_proj: torch.Tensor  # (1, N, 3) normalised crop x, y and depth
    person: torch.Tensor  # (1, 1, S, S) 0/1 person layer (segmentation and mesh, slightly grown)
    plate: torch.Tensor  # (1, 3, S, S) background with the person filled in
    src_mouth: torch.Tensor  # (1, 1, S, S) 1 where the source shows the inside of its mouth
    src_cover: torch.Tensor  # (1, 1, S, S) source mesh coverage
    src_depth: torch.Tensor  # (1, 1, S, S) depth of the visible source surface (+inf off the mesh)
    colourfulness: float  # 0 for a grey photo, 1 for ordinary colour skin: scales the mouth colours

    @property
    def size(self) -> int:
        return self.crop.shape[-1]


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Square dilation of a ``(B, 1, H, W)`` mask, as two 1-D max filters (cost linear in the radius)."""
    if radius <= 0:
        return mask
    k = 2 * radius + 1
    mask = F.max_pool2d(mask, (1, k), stride=1, padding=(0, radius))
    return F.max_pool2d(mask, (k, 1), stride=1, padding=(radius, 0))


class GeometryEngine:
    """Training-free warping engine. ``head_margin``: how far (fraction of the crop) beyond the mesh the
    person's pixels follow the head; ``fill_sweeps``: Jacobi sweeps per level of the flow extension."""

    name = "geometry"

    def __init__(
        self,
        model: FaceModel,
        segmenter: PersonSegmenter | None = None,
        head_margin: float = 0.18,
        fill_sweeps: int = 12,
    ) -> None:
        self.model = model
        self.segmenter = segmenter or PersonSegmenter()
        self.head_margin = head_margin
        self.fill_sweeps = fill_sweeps
        self.faces, self.face_part = self._engine_faces(model)

    @staticmethod
    def _engine_faces(model: FaceModel) -> tuple[torch.Tensor, torch.Tensor]:
        """The rendering subset plus the inner mouth, and a mouth-part label per triangle."""
        faces = [model.render_faces]
        present = [p for p in MOUTH_PARTS if p in model.regions]
        extra = []
        for part in ("teeth", "gums_tongue"):
            if part in present:
                inside = model.regions[part][model.faces].all(1)
                extra.append(model.faces[inside])
        faces = torch.cat(faces + extra)
        label = torch.zeros(len(faces), dtype=torch.long)
        for part in present:
            label[model.regions[part][faces].all(1)] = MOUTH_PARTS[part]
        return faces, label

    # ------------------------------------------------------------------ per source
    def project(self, params: FaceParams) -> torch.Tensor:
        """``(B, N, 3)`` normalised crop coordinates and depth of the model posed by ``params``."""
        return self.model.project(self.model(params), params.camera)

    def prepare(self, crop_image: np.ndarray, params: FaceParams) -> GeometryState:
        s = check_source(crop_image, params)
        with torch.no_grad():
            crop = image_to_tensor(crop_image)
            src_proj = self.project(params)
            frags = rasterize(src_proj, self.faces, (s, s))
            cover = frags.mask
            person = torch.from_numpy(self.segmenter(crop_image))[None, None]
            # the person layer is grown a little to take its soft edge along; the background plate is
            # the crop with exactly that layer filled in from around it, so unmoved pixels stay exact
            person = _dilate(torch.maximum((person > 0.3).float(), cover), max(2, s // 64))
            plate = harmonic_fill(crop, 1.0 - person, sweeps=self.fill_sweeps)
            src_mouth = self._mouth_mask(frags)
            depth = torch.where(cover > 0, frags.depth[:, None], torch.full_like(cover, float("inf")))
            colourfulness = self._colourfulness(crop, cover)
        return GeometryState(
            crop, params.detach().clone(), src_proj, person, plate, src_mouth, cover, depth, colourfulness
        )

    @staticmethod
    def _colourfulness(crop: torch.Tensor, cover: torch.Tensor) -> float:
        """Mean chroma of the face relative to typical skin (~0.08), clipped to [0, 1]."""
        chroma = (crop - crop.mean(1, keepdim=True)).abs().mean(1, keepdim=True)
        face = (chroma * cover).sum() / cover.sum().clamp(min=1)
        return float((face / 0.08).clamp(0, 1))

    def _mouth_mask(self, frags: Fragments) -> torch.Tensor:
        part = self.face_part[frags.face_id.clamp(min=0)] * (frags.face_id >= 0)
        return (part > 0).float()[:, None]

    # ------------------------------------------------------------------ per target
    def flow(self, state: GeometryState, target: FaceParams) -> tuple[torch.Tensor, Fragments, torch.Tensor]:
        """Backward flow ``(B, 2, S, S)`` extended beyond the mesh, the target fragments and the
        mesh-only flow ``(B, 2, S, S)``.

        Target pixels whose surface point was hidden in the source (behind the nose, under a lid, inside
        the closed mouth, round the back of the head) carry no usable source pixel; they are filled like
        the hair, from the visible surface around them.
        """
        s = state.size
        tgt_proj = self.project(target)
        frags = rasterize(tgt_proj, self.faces, (s, s))
        attrs = torch.cat(
            [state.src_proj[..., :2] - tgt_proj[..., :2], state.src_proj[..., 2:].expand_as(tgt_proj[..., 2:])], dim=-1
        )
        mesh = interpolate(attrs, frags)
        mesh_flow, src_z = mesh[:, :2], mesh[:, 2:]
        cover = frags.mask
        visible = cover * self._seen_in_source(state, mesh_flow, src_z)
        zone = _dilate(torch.maximum(cover, state.src_cover.expand_as(cover)), int(self.head_margin * s))
        free = zone * state.person.expand_as(cover) * (1.0 - cover) + (cover - visible)
        # the extension is smooth: the finest level needs no sweeps of its own above 128 px
        flow = harmonic_fill(mesh_flow * visible, 1.0 - free, sweeps=self.fill_sweeps, skip_finest=int(s > 128))
        return flow, frags, mesh_flow

    def _seen_in_source(self, state: GeometryState, mesh_flow: torch.Tensor, src_z: torch.Tensor) -> torch.Tensor:
        """``(B, 1, S, S)``: 1 where the target pixel's surface point is the visible surface in the source."""
        b, s = mesh_flow.shape[0], state.size
        grid = pixel_grid((s, s))[None] + mesh_flow.permute(0, 2, 3, 1)
        seen = F.grid_sample(
            state.src_depth.expand(b, -1, -1, -1), grid, mode="nearest", align_corners=False, padding_mode="border"
        )
        # tolerance: 1 cm of depth (a pixel-sized sampling error on steep surfaces stays below it)
        tol = float(state.params.camera[0, 0]) * 1.0
        return (src_z <= seen + tol).float()

    def render(self, state: GeometryState, target: FaceParams, debug: bool = False) -> EngineResult:
        with torch.no_grad():
            flow, frags, mesh_flow = self.flow(state, target)
            b, s = flow.shape[0], state.size
            grid = pixel_grid((s, s))[None] + flow.permute(0, 2, 3, 1)
            warped = F.grid_sample(state.crop.expand(b, -1, -1, -1), grid, align_corners=False, padding_mode="border")
            layer = F.grid_sample(state.person.expand(b, -1, -1, -1), grid, align_corners=False)
            layer = torch.maximum(layer, frags.mask)
            out = warped * layer + state.plate * (1.0 - layer)
            out, synth = self._fill_mouth(out, state, frags, grid)
        result = EngineResult(tensor_to_images(out), flow, synth[:, 0].numpy())
        if debug:
            result.debug = {
                "mesh_flow": mesh_flow,
                "coverage": frags.mask,
                "person_layer": layer,
                "face_id": frags.face_id,
            }
        return result

    def inspect(self, state: GeometryState, target: FaceParams) -> Inspection:
        result = self.render(state, target[:1] if target.batch_size > 1 else target, debug=True)
        dbg = result.debug
        return Inspection(
            image=result.images[0],
            flow=result.flow[:1],
            flow_label="the displacement field, extended beyond the mesh",
            mesh_flow=dbg["mesh_flow"][:1],
            coverage=dbg["coverage"][:1],
            layer=dbg["person_layer"][:1],
            layer_label="person pixels that follow the head beyond the mesh (hair, neck); the rest stays still",
            notes=["the geometry engine is training-free: it uses no neural codes and has no pyramid"],
        )

    def _fill_mouth(
        self, out: torch.Tensor, state: GeometryState, frags: Fragments, grid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        valid = frags.face_id >= 0
        part = self.face_part[frags.face_id.clamp(min=0)] * valid
        inside = (part > 0).float()[:, None]
        if not inside.any():
            return out, torch.zeros_like(inside)
        src_open = F.grid_sample(state.src_mouth.expand(out.shape[0], -1, -1, -1), grid, align_corners=False)
        fill = inside * (1.0 - src_open)
        colour = MOUTH_COLOURS[part].permute(0, 3, 1, 2)
        grey = colour.mean(1, keepdim=True)
        colour = grey + state.colourfulness * (colour - grey)  # a black-and-white photo gets a grey mouth
        # deeper is darker: depth relative to the nearest mouth pixel of this target, in crop units
        depth = frags.depth[:, None]
        near = torch.where(inside > 0, depth, torch.full_like(depth, float("inf"))).amin(dim=(2, 3), keepdim=True)
        shade = (1.0 - 4.0 * (depth - near).clamp(min=0)).clamp(0.35, 1.0)
        colour = colour * shade
        # feather: the lip pixels next to the opening take a little of the (black) edge colour
        soft = F.avg_pool2d(fill, 3, stride=1, padding=1)
        return out * (1.0 - soft) + colour * soft, soft
