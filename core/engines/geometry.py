"""The training-free ``geometry`` engine: warp the source pixels with the rasterised displacement field.

Per target (all on the S x S crop, flows in normalised crop units, see ``core.coords``):
1. Project source and target meshes (for a large head rotation the target with the source's relief
   deepened along the source's line of sight, ``relief_offsets``); rasterise the target mesh; interpolate
   ``P(src) - P(tgt)`` per pixel: the backward flow on the face, head and neck (the paper's geometric
   displacement field), and where each pixel's mirror surface point lies in the source (``core.face.mirror``).
2. The flow is extended by harmonic interpolation (``core.engines.fill``) over the head zone (the meshes
   grown by ``head_margin``): hair, ears, the rest of the neck *and the background near the head* are free,
   so that everything around the head moves with it as one layer; beyond the zone it is held at zero. The
   extension runs on a canvas grown by ``margin`` beyond the crop, so the flow fades out where the photo
   goes on instead of tearing at the crop's border (full-resolution output moves those pixels too). Where
   the photo ends (``prepare``'s ``photo``), it is held at zero beyond the photo's edge, and within
   ``edge_taper`` of it only the inner face pins it: hair, neck and clothes fade to still at the edge,
   instead of the clothes at the bottom of a tight portrait rising with a raised chin.
3. The crop is warped, and the *head layer* (the source's person mask, carried by the flow, plus the inner
   face) is composed over a *background plate*: the source with the person filled in harmonically. So
   where the head was, the background shows (no ghost ear), and the background itself never moves: its
   flow is zero in the result. Given the photo around the crop (``prepare``'s ``around``), the same is done on
   the grown canvas beyond the crop (``Ring``), for full resolution.
4. Surface the source never showed (and skin it saw so foreshortened that its mirror side is twice as
   sharp) is completed from the mirror side, colour-matched, else filled smoothly where the flow would
   stretch it into streaks (``core.engines.completion``); eyes keep the flow. So is face skin whose warp
   reads the backdrop (the fitted mesh reaches past the real face) where a turn stretches it into a wedge,
   and, whole, the underside of the jaw a raised chin shows as a band the source saw edge-on (``chin_band``).
5. The inside of the mouth: target pixels drawn by the mouth socket, teeth, gums or tongue of the mesh
   whose source location was not mouth interior (the mouth opened) are synthesised: teeth light, gums
   and tongue dark red, the socket nearly black, darkened with depth and feathered at the lips. Where the
   source mouth was already open, its own pixels are warped.
What was made up rather than moved (the plate where the person was, completed and mouth pixels) is the
result's ``synthesised`` layer, which full-resolution output pastes from the crop, together with the head
layer's edge over where the person was (``_layer_edge``). Of it, the smooth fill of face skin the source did
show but the flow stretched too far (the side of the face a turn brings round) is the result's ``detail``:
full resolution adds to it the finer grain of the sharp skin beside it, mirrored across their border
(``completion.reflected_grain``), so a photo larger than the crop shows skin there, not a blurred patch.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from core.coords import pixel_grid
from core.engines.base import EngineResult, Inspection, check_source, image_to_tensor, tensor_to_images
from core.engines.completion import (
    Completion,
    chin_band,
    complete_hidden,
    crown_vertices,
    foreshortened,
    local_area_ratio,
    mirror_partners,
    overstretched,
    skin_vertices,
    underside_vertices,
)
from core.engines.fill import harmonic_fill
from core.engines.masks import dilate, erode, soft_edge
from core.engines.person import PersonSegmenter
from core.face.base import FaceModel
from core.face.params import FaceParams
from core.face.rotation import rotation_angle_deg, rotation_axis
from core.render.interpolate import interpolate
from core.render.raster import Fragments, rasterize

# Mouth interior categories drawn by the engine (0 = ordinary surface), and their RGB colours in [0, 1].
MOUTH_PARTS = {"mouth_socket": 1, "teeth": 2, "gums_tongue": 3}
MOUTH_COLOURS = torch.tensor([[0.0, 0.0, 0.0], [0.10, 0.03, 0.03], [0.86, 0.83, 0.76], [0.45, 0.16, 0.16]])
# Head rotations (degrees, source to target) below the first angle keep the fitted relief; from the second on
# they get all of the engine's relief gain (``relief_offsets``).
RELIEF_RAMP = (8.0, 25.0)
# Whole-layer pixels next to the head layer's edge that full resolution pastes from the crop (``_layer_edge``)
LAYER_EDGE_PX = 2
# Face skin that reads the backdrop gets the membrane where the warp stretches it more than this many times
# (``_complete``): a large turn's wedges (man, W009: 2-17 times) but not a 5 degree turn's rim (1.4-2 times)
OFF_FACE_STRETCH = 2.0
# a head rotation that lifts the chin by more than this many degrees shows the jaw's underside as a band
# (``completion.chin_band``), filled whole; its stretch is judged over this fraction of the crop around a pixel
CHIN_LIFT_DEG = 8.0
CHIN_BAND_RADIUS = 1.0 / 32.0


def relief_offsets(
    depth: torch.Tensor,
    rot_src: torch.Tensor,
    rot_tgt: torch.Tensor,
    weights: torch.Tensor,
    gain: float,
    nod_gain: float | None = None,
) -> torch.Tensor:
    """Model-frame offsets ``(B, N, 3)`` (cm) that deepen the source's relief for a large head rotation.

    A fit from one photo is least sure of depth along the photo's line of sight, and the fitted relief is
    too shallow for large rotations: without this step, this engine's 30 degree turns and 20 degree nods of
    14 sample portraits were read back as 0.80 and 0.63-0.81 of the request, and its renders of real head
    turns from the sample clips at 0.91 (yaw) and 0.80 (pitch) of the real change, while turns of 12-18
    degrees read right (0.98). So each vertex's depth in front of the head pivot along the source's line of
    sight, ``depth (1, N)``, is stretched by up to ``gain`` (0.15: 15 % deeper) for a turn and ``nod_gain``
    (default ``gain``) for a nod, mixed by the share of each in the rotation's axis, growing with the
    rotation from source to target (``RELIEF_RAMP``; a roll, which moves nothing along the line of sight,
    gets none), and the stretch is carried to the target by the head's relative rotation: the source's own
    projection never changes (the stretch is along its line of sight) and small rotations, such as
    reenactment's, keep the fitted relief.
    ``rot_src (1, 3, 3)``, ``rot_tgt (B, 3, 3)``: ``FaceModel.head_rotation``; ``weights (N,)``: how fully
    each vertex follows the head (the neck's fade-out carries the stretch the head's way only partly).
    """
    rel = rot_tgt @ rot_src.transpose(1, 2)  # (B, 3, 3) source pose to target pose
    t = ((rotation_angle_deg(rel) - RELIEF_RAMP[0]) / (RELIEF_RAMP[1] - RELIEF_RAMP[0])).clamp(0.0, 1.0)
    axis = rotation_axis(rel) ** 2  # (B, 3); a roll turns about the line of sight: no relief to show
    nod = gain if nod_gain is None else nod_gain
    amount = (nod * axis[:, 0] + gain * axis[:, 1]) * t * t * (3.0 - 2.0 * t)  # (B,)
    sight = (rot_tgt @ rot_src[:, 2, :, None])[..., 0]  # (B, 3) the source's line of sight, posed as the target
    w = weights[None, :, None].to(depth.dtype)
    direction = w * sight[:, None] + (1.0 - w) * sight.new_tensor([0.0, 0.0, 1.0])  # (B, N, 3)
    return (amount[:, None] * depth)[..., None] * direction


def chin_lift_deg(rot_src: torch.Tensor, rot_tgt: torch.Tensor) -> torch.Tensor:
    """``(B,)`` degrees by which the head rotation from ``rot_src (1, 3, 3)`` to ``rot_tgt (B, 3, 3)``
    (``FaceModel.head_rotation``) turns the underside of the jaw towards the camera: the change in elevation,
    towards the camera, of the head's downward direction. As the ``pitch`` control for a nod of a frontal head
    (positive lifts the chin); 0 for a turn; a roll of a turned head turns it a little away."""

    def elevation(rot: torch.Tensor) -> torch.Tensor:  # the rest frame's -y, posed: its z component
        return torch.rad2deg(torch.asin((-rot[..., 2, 1]).clamp(-1.0, 1.0)))

    return elevation(rot_tgt) - elevation(rot_src)


def photo_area(crop: torch.Tensor) -> torch.Tensor:
    """``(1, 1, S, S)``: 0 on the bands along the border of a crop ``(1, 3, S, S)`` that are the same row or
    column repeated (where the crop ran past the photo's edge and its edge was repeated, ``core.fit.crop``),
    else 1. An evenly coloured band of the photo itself counts as repeated too, which is harmless for what
    it is used for: a stretch of it draws no streaks either."""
    s = crop.shape[-1]
    area = torch.ones(1, 1, s, s, dtype=crop.dtype)
    same_row = (crop[..., 1:, :] == crop[..., :-1, :]).all(1).all(-1)[0]  # (S - 1,) row i equals row i + 1
    same_col = (crop[..., :, 1:] == crop[..., :, :-1]).all(1).all(-2)[0]
    for same, dim in ((same_row, 2), (same_col, 3)):
        lead = int(torch.cumprod(same.int(), 0).sum())  # rows 0..lead-1 repeat row lead
        trail = int(torch.cumprod(same.flip(0).int(), 0).sum())
        if lead:
            area.narrow(dim, 0, lead).zero_()
        if trail:
            area.narrow(dim, s - trail, trail).zero_()
    return area


def edge_distance(photo: np.ndarray | None, size: int) -> torch.Tensor:
    """Distance (pixels) from each pixel of an S-pixel crop grown by ``a`` on each side to the nearest one beyond
    the photo's edge, 0 beyond it: ``(1, 1, S + 2a, S + 2a)``. ``photo (S + 2a, S + 2a)``: where the photo goes
    on around the crop (``Engine.prepare``); None: it goes on all round (a = 0, all infinite)."""
    if photo is None:
        return torch.full((1, 1, size, size), float("inf"))
    inside = np.asarray(photo, np.float32)
    if inside.ndim != 2 or inside.shape[0] != inside.shape[1] or inside.shape[0] < size or (inside.shape[0] - size) % 2:
        raise ValueError(f"photo must be a square mask around the {size}-pixel crop, got shape {inside.shape}")
    inside = (inside > 0.5).astype(np.uint8)
    if inside.all():
        return torch.full((1, 1) + inside.shape, float("inf"))
    return torch.from_numpy(cv2.distanceTransform(inside, cv2.DIST_L2, 5))[None, None]


@dataclass
class Ring:
    """The photo around the crop on ``extend``'s canvas (the crop grown by m pixels on each side, its middle the
    crop), for the head layer beyond the crop: where a large turn moves the hair away across the crop's edge,
    the background shows there as it does inside the crop, instead of the photo moving along with the head
    beyond the edge and a smooth plate inside it (a straight seam along the crop's edge at full resolution)."""

    image: torch.Tensor  # (1, 3, S + 2m, S + 2m) in [0, 1]
    person: torch.Tensor  # (1, 1, S + 2m, S + 2m) 0/1 the person, grown as the crop's; the crop's in the middle
    plate: torch.Tensor  # (1, 3, S + 2m, S + 2m) the background with the person filled in; the crop's in the middle


@dataclass
class GeometryState:
    """What ``prepare`` caches for one source crop."""

    crop: torch.Tensor  # (1, 3, S, S) in [0, 1]
    params: FaceParams  # the source fit, B = 1
    src_proj: torch.Tensor  # (1, N, 3) normalised crop x, y and depth
    person: torch.Tensor  # (1, 1, S, S) 0/1 pixels of the person (segmentation and inner face, slightly grown)
    # (1, 1, S, S) 0/1 the person as segmented, not grown (the mesh may reach past it), a pixel in from its edge
    # (at 256 px; the edge's own pixels blend person and background)
    segment: torch.Tensor
    plate: torch.Tensor  # (1, 3, S, S) background with the person filled in
    src_mouth: torch.Tensor  # (1, 1, S, S) 1 where the source shows the inside of its mouth
    src_cover: torch.Tensor  # (1, 1, S, S) source mesh coverage
    src_depth: torch.Tensor  # (1, 1, S, S) depth of the visible source surface (+inf off the mesh)
    colourfulness: float  # 0 for a grey photo, 1 for ordinary colour skin: scales the mouth colours
    photo: torch.Tensor  # (1, 1, S, S) 1 where the crop shows the photo, 0 where it ran past its edge
    edge_distance: torch.Tensor  # (1, 1, S + 2a, S + 2a) pixels to the photo's edge (``edge_distance``)
    face: torch.Tensor  # (1, 1, S, S) 0/1 the source mesh's inner face, grown by 2 pixels (at 256 px)
    # the head layer beyond the crop (``Ring``), when ``prepare`` was given the photo around the crop
    ring: Ring | None = None

    @property
    def size(self) -> int:
        return self.crop.shape[-1]


@dataclass
class TargetGeometry:
    """What the target meshes say about each crop pixel (B targets, S x S crop, normalised units)."""

    frags: Fragments  # the rasterised target meshes
    mesh_flow: torch.Tensor  # (B, 2, S, S) backward flow of the meshes alone (0 off the mesh)
    seen: torch.Tensor  # (B, 1, S, S) 1 where the pixel's surface point is the visible surface in the source
    mirror_grid: torch.Tensor  # (B, S, S, 2) where the pixel's mirror surface point lies in the source
    # (B, 1, S, S) 1 where that mirror point is visible in the source and usable: on the person, in the crop,
    # and seen at least a third as large as the target shows it
    mirror_seen: torch.Tensor
    inner: torch.Tensor  # (B, 1, S, S) 1 on the inner face, eyes and mouth: always the person
    skin: torch.Tensor  # (B, 1, S, S) 1 on skin (not eyes or mouth interior): where completion applies
    underside: torch.Tensor  # (B, 1, S, S) 1 on the skin under the jaw (``completion.underside_vertices``)
    crown: torch.Tensor  # (B, 1, S, S) 1 on the top of the skull (``completion.crown_vertices``)


class GeometryEngine:
    """Training-free warping engine. ``head_margin``: how far (fraction of the crop) beyond the mesh the
    person's pixels follow the head; ``fill_sweeps``: Jacobi sweeps per level of the flow extension;
    ``margin``: how far (fraction of the crop, each side) the flow is computed beyond the crop, for the
    full-resolution photo around it; ``completion``: complete hidden and streaking skin (step 4 above);
    ``edge_taper``: how far (fraction of the crop) from the photo's edge the mesh no longer pins the flow of
    hair, ears and neck, which the extension then brings to rest at the edge (the inner face keeps the mesh's);
    ``relief``, ``nod_relief``: how much deeper the source's relief gets for a large head turn and a large nod
    (``relief_offsets``; 0 keeps the fitted relief). Nods get more: with the turns' gain, 20 degree nods of the
    56 sample portraits read 3.1 (down) and 5.5 (up) degrees short, turns of 30 degrees 2.3-2.9, and renders
    of real head motion in the sample clips 0.90 of a real nod against 0.96 of a real turn."""

    name = "geometry"

    def __init__(
        self,
        model: FaceModel,
        segmenter: PersonSegmenter | None = None,
        head_margin: float = 0.18,
        fill_sweeps: int = 12,
        margin: float = 0.2,
        completion: bool = True,
        relief: float = 0.15,
        nod_relief: float = 0.2,
        edge_taper: float = 0.3,
    ) -> None:
        self.model = model
        self.segmenter = segmenter or PersonSegmenter()
        self.head_margin = head_margin
        self.margin = margin
        self.completion = completion
        self.relief = relief
        self.nod_relief = nod_relief
        self.edge_taper = edge_taper
        self.fill_sweeps = fill_sweeps
        self.faces, self.face_part = self._engine_faces(model)
        self.partner, partner_ok = mirror_partners(model)
        self.partner_ok = partner_ok[None, :, None]  # (1, N, 1), an interpolated attribute
        self.inner = self._inner_face(model)[:, None]  # (N, 1)
        self.skin = skin_vertices(model)[:, None]  # (N, 1)
        self.underside = underside_vertices(model)[:, None]  # (N, 1)
        self.crown = crown_vertices(model)[:, None]  # (N, 1)

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

    @staticmethod
    def _inner_face(model: FaceModel) -> torch.Tensor:
        """``(N,)`` 1.0 on vertices that are always the person in a photo (inner face, eyes, mouth)."""
        inner = torch.zeros(model.n_vertices)
        for name in ("face_narrow", "eyes", "mouth_interior"):
            if name in model.regions:
                inner = torch.maximum(inner, model.regions[name].float())
        return inner

    # ------------------------------------------------------------------ per source
    def project(self, params: FaceParams) -> torch.Tensor:
        """``(B, N, 3)`` normalised crop coordinates and depth of the model posed by ``params``."""
        return self.model.project(self.model(params), params.camera)

    def target_projection(self, state: GeometryState, target: FaceParams) -> torch.Tensor:
        """``(B, N, 3)`` the target meshes projected, with the source's relief along its line of sight deepened
        for large head rotations (``relief_offsets``); the plain projection where the model has no rigid head
        pivot or the engine no relief gain."""
        proj = self.project(target)
        pivot, weights = getattr(self.model, "head_pivot", None), getattr(self.model, "head_weights", None)
        if pivot is None or weights is None or not (self.relief or self.nod_relief):
            return proj
        scale = state.params.camera[:, 0].view(-1, 1)
        depth = -state.src_proj[..., 2] / scale - pivot[2]  # (1, N) cm in front of the pivot, posed source
        model = self.model
        off = relief_offsets(
            depth,
            model.head_rotation(state.params),
            model.head_rotation(target),
            weights,
            self.relief,
            self.nod_relief,
        )
        # model-frame cm to the normalised image of core.coords: x = s X, y = -s Y, depth = -s Z
        return proj + target.camera[:, 0].view(-1, 1, 1) * off * off.new_tensor([1.0, -1.0, -1.0])

    def prepare(
        self,
        crop_image: np.ndarray,
        params: FaceParams,
        photo: np.ndarray | None = None,
        around: np.ndarray | None = None,
    ) -> GeometryState:
        """``photo``: where the photo goes on around the crop (``Engine.prepare``). Without it the photo is
        taken to go on beyond the crop, except for bands the crop repeated past its edge (``photo_area``; an
        evenly coloured band of the photo itself looks the same, so they only decide what the crown shows).
        ``around``: the photo around the crop (``Engine.prepare``), for the head layer beyond the crop
        (``Ring``); without it, beyond the crop everything moves with the head's fading flow."""
        s = check_source(crop_image, params)
        with torch.no_grad():
            crop = image_to_tensor(crop_image)
            src_proj = self.project(params)
            frags = rasterize(src_proj, self.faces, (s, s))
            cover = frags.mask
            segment = self._segment(crop_image)
            # the person layer is grown to take its soft edge along (faint hair and the photo's halo around
            # it would otherwise stay behind as an outline when the head moves away). The mesh reaches beyond
            # the real head, so of the mesh only the inner face counts (segmentation can miss it). The
            # background plate is the crop with exactly that layer filled in from around it, so unmoved
            # pixels stay exact
            inner = (interpolate(self.inner[None], frags) > 0.5).float()
            person = self._grown(torch.maximum(segment, inner), s)
            plate = harmonic_fill(crop, 1.0 - person, sweeps=self.fill_sweeps)
            src_mouth = self._mouth_mask(frags)
            depth = torch.where(cover > 0, frags.depth[:, None], torch.full_like(cover, float("inf")))
            colourfulness = self._colourfulness(crop, cover)
            edge = edge_distance(photo, s)
            a = (edge.shape[-1] - s) // 2
            # the crop's own view of where it shows the photo, when not told: bands it repeated past the edge
            in_photo = photo_area(crop) if photo is None else (edge[..., a : a + s, a : a + s] > 0).to(crop.dtype)
        return GeometryState(
            crop,
            params.detach().clone(),
            src_proj,
            person,
            erode(segment, max(1, s // 256)),
            plate,
            src_mouth,
            cover,
            depth,
            colourfulness,
            in_photo,
            edge,
            dilate(inner, max(1, s // 128)),
            None if around is None else self._ring(around, photo, person, plate),
        )

    def _ring(
        self, around: np.ndarray, photo: np.ndarray | None, person: torch.Tensor, plate: torch.Tensor
    ) -> Ring | None:
        """The photo ``around`` the crop (``(S + 2a, S + 2a, 3)`` RGB uint8, a >= the margin) on ``extend``'s
        canvas: its person, segmented and grown as the crop's (beyond ``photo``'s edge: none), with the crop's
        ``person (1, 1, S, S)`` in the middle, and its plate, the crop's ``plate (1, 3, S, S)`` in the middle and
        filled on from there and from the background around (no seam at the crop's edge). None for an engine
        without a margin."""
        s, m = person.shape[-1], self.margin_px(person.shape[-1])
        if m == 0:
            return None
        around = np.asarray(around)
        n = around.shape[0]
        if around.shape != (n, n, 3) or around.dtype != np.uint8 or n < s + 2 * m or (n - s) % 2:
            raise ValueError(
                f"around must be the RGB uint8 photo around the {s}-pixel crop, at least {s + 2 * m} pixels "
                f"square, got {around.shape} {around.dtype}"
            )
        seen = self._segment(around)
        if photo is not None:
            if np.shape(photo) != (n, n):
                raise ValueError(f"photo and around must be the same square, got {np.shape(photo)} and {around.shape}")
            seen = seen * (torch.from_numpy(np.asarray(photo, np.float32))[None, None] > 0.5).float()
        cut = slice((n - s) // 2 - m, (n + s) // 2 + m)
        image = image_to_tensor(around)[..., cut, cut]
        ring_person = self._grown(seen, s)[..., cut, cut].clone()
        ring_person[..., m : m + s, m : m + s] = person
        values, known = image.clone(), 1.0 - ring_person
        values[..., m : m + s, m : m + s] = plate
        known[..., m : m + s, m : m + s] = 1.0
        return Ring(image, ring_person, harmonic_fill(values, known, sweeps=self.fill_sweeps))

    def _segment(self, image: np.ndarray) -> torch.Tensor:
        """``(1, 1, H, W)`` 0/1: the person in an RGB uint8 ``image`` (the selfie segmentation over 0.3)."""
        return (torch.from_numpy(self.segmenter(image))[None, None] > 0.3).float()

    @staticmethod
    def _grown(person: torch.Tensor, size: int) -> torch.Tensor:
        """The person layer ``(1, 1, H, W)`` grown to take its soft edge along, for an ``size``-pixel crop (faint
        hair and the photo's halo around it would otherwise stay behind as an outline when the head moves)."""
        return dilate(person, max(3, size // 32))

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
    def target_geometry(self, state: GeometryState, target: FaceParams) -> TargetGeometry:
        """Rasterise the target meshes and relate every covered pixel to the source (see ``TargetGeometry``)."""
        s = state.size
        tgt_proj = self.target_projection(state, target)
        frags = rasterize(tgt_proj, self.faces, (s, s))
        src = state.src_proj.expand(tgt_proj.shape[0], -1, -1)
        mirrored = src[:, self.partner]
        # channels: 0-1 mesh flow, 2 source depth, 3-4 mirror point in the source, 5 its depth, 6 mirror usable,
        # 7 inner face, 8 skin, 9 under the jaw, 10 crown
        attrs = torch.cat(
            [
                src[..., :2] - tgt_proj[..., :2],
                src[..., 2:],
                mirrored,
                self.partner_ok.expand(*src.shape[:2], 1),
                self.inner[None].expand(*src.shape[:2], 1),
                self.skin[None].expand(*src.shape[:2], 1),
                self.underside[None].expand(*src.shape[:2], 1),
                self.crown[None].expand(*src.shape[:2], 1),
            ],
            -1,
        )
        mesh = interpolate(attrs, frags)
        mesh_flow, src_z = mesh[:, :2], mesh[:, 2:3]
        cover = frags.mask
        seen = cover * self._seen_in_source(state, pixel_grid((s, s))[None] + mesh_flow.permute(0, 2, 3, 1), src_z)
        mirror_grid = mesh[:, 3:5].permute(0, 2, 3, 1)
        inside = (mirror_grid.abs() < 1.0).all(-1)[:, None].float()
        mirror_seen = cover * (mesh[:, 6:7] > 0.99).float() * inside
        mirror_seen = mirror_seen * self._seen_in_source(state, mirror_grid, mesh[:, 5:6])
        # ... and it must show the person, not background the mesh reaches over
        person = F.grid_sample(state.person.expand(len(mesh), -1, -1, -1), mirror_grid, align_corners=False)
        mirror_seen = mirror_seen * (person > 0.99).float()
        # ... and not edge-on: a sliver at the far side's silhouette, stretched, streaks with the ear beside it
        mirror_seen = mirror_seen * (1.0 - overstretched(mirror_grid))
        inner = cover * (mesh[:, 7:8] > 0.5).float()
        skin = cover * (mesh[:, 8:9] > 0.5).float()
        underside = cover * (mesh[:, 9:10] > 0.5).float()
        crown = cover * (mesh[:, 10:11] > 0.5).float()
        return TargetGeometry(frags, mesh_flow, seen, mirror_grid, mirror_seen, inner, skin, underside, crown)

    def extend(self, state: GeometryState, geo: TargetGeometry) -> torch.Tensor:
        """The backward flow ``(B, 2, S + 2m, S + 2m)`` over the crop grown by ``m = margin_px(S)`` pixels on
        each side (normalised units of the crop): the mesh flow where the source saw the surface, extended by
        harmonic interpolation over the rest of the head zone (hair, ears, neck, background near the head)
        and held at zero beyond it, on the grown canvas's border and beyond the photo's edge, where near the
        edge (``edge_taper``) only the inner face keeps the mesh's flow.

        The background near the head is free too, so hair and ears move with the head as one layer; whether
        a target pixel shows that layer or the background plate is decided after warping (``render``), so
        nothing is left behind where the head was and the background does not move. The margin lets the
        flow fade out beyond the crop, where the full-resolution photo goes on, instead of tearing at the
        crop's border when the head reaches it.
        """
        s, m = state.size, self.margin_px(state.size)
        grow = (m, m, m, m)
        cover = F.pad(geo.frags.mask, grow)
        src_cover = F.pad(state.src_cover, grow).expand_as(cover)
        zone = dilate(torch.maximum(cover, src_cover), int(self.head_margin * s))
        zone[..., :1, :] = zone[..., -1:, :] = zone[..., :, :1] = zone[..., :, -1:] = 0.0
        known = F.pad(geo.seen * (1.0 - self.grazing(geo)), grow)
        # near the photo's edge only the inner face pins the flow; beyond the edge the rest is held still
        edge = self._edge_distance(state, m)
        near = (edge < self.edge_taper * s).to(known.dtype)
        known = known * (1.0 - near * (1.0 - F.pad(geo.inner, grow)))
        free = (zone * (1.0 - cover) + (cover - known)) * (edge > 0).to(known.dtype)
        # the extension is smooth: levels finer than ~90 px need no sweeps of their own (they keep the known
        # pixels exactly and take the upsampled coarser solution elsewhere)
        mesh_flow = F.pad(geo.mesh_flow, grow) * known
        skip = max(0, int(np.log2(max(s + 2 * m, 1) / 90.0)) + 1) if s > 128 else 0
        return harmonic_fill(mesh_flow, 1.0 - free, sweeps=self.fill_sweeps, skip_finest=skip)

    @staticmethod
    def grazing(geo: TargetGeometry) -> torch.Tensor:
        """``(B, 1, S, S)``: mesh pixels beyond the inner face (scalp, ears, neck) that the source saw so
        obliquely that its few pixels would be stretched over more than 3 times as many (the crown a nod
        brings into view, the back of the head a turn brings round). Their flow is left to the smooth
        extension, which spreads that stretch over the hair and the head's surroundings instead of drawing
        it as thin streaks; the mesh there is the least like the real head anyway (hair is not the scalp)."""
        s = geo.mesh_flow.shape[-1]
        grid = pixel_grid((s, s))[None] + geo.mesh_flow.permute(0, 2, 3, 1)
        stretched = overstretched(grid)
        outer = geo.seen * (1.0 - geo.inner)
        return dilate(outer * stretched, 1) * outer

    @staticmethod
    def _edge_distance(state: GeometryState, m: int) -> torch.Tensor:
        """``(1, 1, S + 2m, S + 2m)``: the state's distances to the photo's edge on the crop grown by ``m``."""
        a = (state.edge_distance.shape[-1] - state.size) // 2
        if a >= m:
            return state.edge_distance[..., a - m : a + state.size + m, a - m : a + state.size + m]
        return F.pad(state.edge_distance, (m - a,) * 4, mode="replicate")

    def margin_px(self, size: int) -> int:
        """Pixels by which ``extend``'s canvas reaches beyond an S-pixel crop on each side."""
        return int(round(self.margin * size))

    def flow(self, state: GeometryState, target: FaceParams) -> tuple[torch.Tensor, Fragments, torch.Tensor]:
        """Backward flow ``(B, 2, S, S)`` on the crop, extended beyond the mesh (before layering), the target
        fragments and the mesh-only flow ``(B, 2, S, S)``."""
        geo = self.target_geometry(state, target)
        return self._inside(self.extend(state, geo), state.size), geo.frags, geo.mesh_flow

    def _inside(self, outer: torch.Tensor, size: int) -> torch.Tensor:
        m = self.margin_px(size)
        return outer[..., m : m + size, m : m + size]

    def _seen_in_source(self, state: GeometryState, grid: torch.Tensor, src_z: torch.Tensor) -> torch.Tensor:
        """``(B, 1, S, S)``: 1 where the surface point at source position ``grid (B, S, S, 2)`` with source
        depth ``src_z (B, 1, S, S)`` is the visible surface there."""
        b = grid.shape[0]
        seen = F.grid_sample(
            state.src_depth.expand(b, -1, -1, -1), grid, mode="nearest", align_corners=False, padding_mode="border"
        )
        # tolerance: 1 cm of depth (a pixel-sized sampling error on steep surfaces stays below it)
        tol = float(state.params.camera[0, 0]) * 1.0
        return (src_z <= seen + tol).float()

    def render(self, state: GeometryState, target: FaceParams, debug: bool = False) -> EngineResult:
        with torch.no_grad():
            geo = self.target_geometry(state, target)
            outer = self.extend(state, geo)
            b, s = outer.shape[0], state.size
            flow = self._inside(outer, s)
            cover = geo.frags.mask
            grid = pixel_grid((s, s))[None] + flow.permute(0, 2, 3, 1)
            warped = F.grid_sample(state.crop.expand(b, -1, -1, -1), grid, align_corners=False, padding_mode="border")
            # the head layer: person pixels carried by the flow, the inner face, completed mirror pixels
            # (the person goes on beyond the crop's border)
            layer = F.grid_sample(state.person.expand(b, -1, -1, -1), grid, align_corners=False, padding_mode="border")
            layer = torch.maximum(layer, geo.inner)
            hidden = self._hidden(geo) if self.completion else None
            if hidden is not None:
                layer = torch.maximum(layer, hidden * geo.mirror_seen)
            out = warped * layer + state.plate * (1.0 - layer)
            out = self._beyond_crop(out, grid, layer)
            done = self._complete(out, state, geo, grid, hidden, target)
            out, mouth = self._fill_mouth(done.image, state, geo.frags, grid)
            # what full resolution cannot take from the photo: the plate where the person was, made-up pixels
            plate = (1.0 - layer) * state.person
            synth = torch.maximum(torch.maximum(mouth, done.synthesised * (1.0 - mouth)), plate)
            paste = torch.maximum(synth, self._layer_edge(layer, state.person, flow))
            # the smoothly filled face skin the source showed (not under the jaw, a raised chin's edge-on sliver):
            # at full resolution it takes the grain of the sharp skin beside it
            detail = None if done.grain_mask is None else done.grain_mask * (1.0 - geo.underside) * (1.0 - mouth)
            # the background shows the plate, i.e. its own unmoved pixels: its flow is zero
            flow = flow * layer
            # ... beyond the crop too, where the photo around it is known (a variant of another margin: not)
            m = self.margin_px(s)
            ring = state.ring if state.ring is not None and state.ring.person.shape[-1] == s + 2 * m else None
            beyond = None if ring is None else self._beyond_crop_layer(ring, outer, s)
            if beyond is not None:
                outer = outer * beyond[2]
            outer[..., m : m + s, m : m + s] = flow
        result = EngineResult(
            tensor_to_images(out),
            flow,
            paste[:, 0].numpy(),
            outer_flow=outer,
            margin=m,
            detail=None if detail is None else detail[:, 0].numpy(),
            detail_flow=done.grain_flow,
        )
        if beyond is not None:
            image, pasted, _ = beyond
            image[..., m : m + s, m : m + s] = out
            pasted[..., m : m + s, m : m + s] = paste
            result.outer_images, result.outer_synthesised = tensor_to_images(image), pasted[:, 0].numpy()
        if debug:
            result.debug = {
                "mesh_flow": geo.mesh_flow,
                "coverage": cover,
                "person_layer": layer,
                "face_id": geo.frags.face_id,
                "mirrored": done.mirrored,
                "membrane": done.membrane,
                "synthesised": synth,
            }
        return result

    def _beyond_crop_layer(
        self, ring: Ring, outer: torch.Tensor, s: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The head layer over the background plate on ``extend``'s canvas, from the ``outer (B, 2, S + 2m,
        S + 2m)`` flow (normalised crop units): the composite ``(B, 3, ...)``, what full resolution pastes
        from it (the plate where the person was, the layer's edge where it moves: ``(B, 1, ...)``) and the
        layer ``(B, 1, ...)``, by which the flow is multiplied (the background keeps its place). The caller
        puts the crop's own in the middle."""
        n = outer.shape[-1]
        b = outer.shape[0]
        step = outer * (s / n)  # normalised units of the canvas
        grid = pixel_grid((n, n))[None] + step.permute(0, 2, 3, 1)
        layer = F.grid_sample(ring.person.expand(b, -1, -1, -1), grid, align_corners=False, padding_mode="border")
        warped = F.grid_sample(ring.image.expand(b, -1, -1, -1), grid, align_corners=False, padding_mode="border")
        image = warped * layer + ring.plate * (1.0 - layer)
        pasted = torch.maximum((1.0 - layer) * ring.person, self._layer_edge(layer, ring.person, step))
        return image, pasted, layer

    @staticmethod
    def _layer_edge(layer: torch.Tensor, person: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        """``(B, 1, S, S)`` in [0, 1]: over the source's ``person``, pixels not wholly in the head layer
        ``layer`` where the head moves (``flow (B, 2, S, S)``, before layering; weight 0 under half a pixel, 1
        from one and a half), and the layer's last ``LAYER_EDGE_PX`` whole pixels there. Full resolution
        resamples the photo with the flow times the layer, upsampled: between a whole-layer pixel and the
        plate beside it that is a fraction of the head's motion, which lands on the old silhouette and draws
        it again as a faint outline. These pixels are pasted from the crop, whose composite moves them fully;
        where the head hardly moves the photo's own sharper edge is kept."""
        # a ramp, not a threshold: in a video no pixel flips between the photo and the crop as its motion
        # crosses one
        moving = (flow.norm(dim=1, keepdim=True) * (flow.shape[-1] / 2.0) - 0.5).clamp(0.0, 1.0)
        partial = (layer < 0.999).to(flow) * moving
        r = LAYER_EDGE_PX
        return F.max_pool2d(partial, 2 * r + 1, stride=1, padding=r) * person

    @staticmethod
    def _hidden(geo: TargetGeometry) -> torch.Tensor:
        """``(B, 1, S, S)`` skin the source never showed; patches thinner than 3 px are left to the flow."""
        return dilate(erode(geo.skin - geo.seen * geo.skin, 1), 1) * geo.skin

    def _complete(
        self,
        out: torch.Tensor,
        state: GeometryState,
        geo: TargetGeometry,
        grid: torch.Tensor,
        hidden: torch.Tensor | None,
        target: FaceParams,
    ) -> Completion:
        """Mirror and smooth completion of ``hidden`` (``_hidden``), foreshortened and streaking skin and a raised
        chin's underside (``core.engines.completion``); nothing when the engine was built with
        ``completion=False`` (``hidden`` is then None)."""
        if hidden is None:
            empty = torch.zeros_like(geo.inner)
            return Completion(out, empty, empty)
        s = state.size
        poor = foreshortened(
            pixel_grid((s, s))[None] + geo.mesh_flow.permute(0, 2, 3, 1),
            geo.mirror_grid,
            geo.seen * geo.skin,
            geo.mirror_seen,
        )
        ratio = local_area_ratio(grid)
        stretched = overstretched(grid, ratio=ratio)
        # visible inner-face skin stretched over 3 times (the side a turn brings round, seen edge-on from the
        # front) would streak: patches of it at least 7 px across get the membrane (thinner ones, at the lips
        # and lids as an expression changes, keep the warp); under the jaw, which a raised chin shows edge-on
        # as thin streaks along the jaw line, every such pixel
        face_skin = geo.seen * geo.inner * geo.skin
        smeared = dilate(erode(face_skin * stretched, 3), 3)
        smeared = torch.maximum(smeared, geo.seen * geo.underside * stretched)
        # the hidden crown keeps the flow's continuation of the hair (``crown_vertices``), unless that reads a
        # band the crop repeated past the photo's edge (streaks): the crop's edge stands for what lies beyond it
        too_stretched = stretched
        crown = geo.crown * stretched
        if crown.any():  # (a nod: other edits show no stretched crown, and sample nothing)
            photo = F.grid_sample(
                state.photo.expand(len(grid), -1, -1, -1), grid, align_corners=False, padding_mode="border"
            )
            too_stretched = stretched * (1.0 - crown * (photo > 0.5).float())
        # the mirror's colour offset is measured where the warp reads the person, not the background a mesh
        # reaching past the face's edge reads (its colour carried onto the mirrored skin made a whitish cheek)
        inside = state.segment.expand(len(grid), -1, -1, -1)
        on_person = (F.grid_sample(inside, grid, align_corners=False) > 0.99).to(out.dtype)
        # the smeared membrane's colours: the face's own skin as warped, not the hair and background its edge
        # reached over, nor the background the mesh's edge reads beyond the face (a whitish fog over the cheek)
        skin = face_skin * (1.0 - stretched) * on_person
        # face skin whose warp reads the backdrop: the fitted mesh's rim reaches past the real face, and a turn
        # stretches that rim into a wedge of background inside the face (W009's jaw at yaw+25). Patches at
        # least 3 px across, stretched over twice, get the membrane; a small motion's thin rim keeps the warp
        off = face_skin * (1.0 - on_person) * overstretched(grid, OFF_FACE_STRETCH, ratio)
        smeared = torch.maximum(smeared, dilate(erode(off, 1), 1) * off)
        # a raised chin's underside is filled whole from the chin above it and the neck below, as if hidden:
        # neither its slivers that the warp keeps nor the mirror side's jaw edge draw lines across it
        band = self.chin_band(state, geo, grid, target, ratio)
        mirror_seen = geo.mirror_seen
        if band is not None:
            keep = 1.0 - band
            hidden, too_stretched = torch.maximum(hidden, band), torch.maximum(too_stretched, band)
            mirror_seen, poor, smeared, skin = mirror_seen * keep, poor * keep, smeared * keep, skin * keep
        return complete_hidden(
            out,
            state.crop,
            hidden,
            geo.seen,
            geo.mirror_grid,
            mirror_seen,
            poor,
            too_stretched,
            smeared,
            skin,
            measured=on_person,
        )

    def chin_band(
        self,
        state: GeometryState,
        geo: TargetGeometry,
        grid: torch.Tensor,
        target: FaceParams,
        ratio: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """``(B, 1, S, S)`` 0/1: the underside of the jaw that a chin lifted by more than ``CHIN_LIFT_DEG`` shows
        as a band the source saw edge-on (``completion.chin_band``), where the warp ``grid (B, S, S, 2)`` reads
        the source's face; None when no target lifts the chin that far. ``ratio``: the warp's
        ``local_area_ratio``, when already computed."""
        lift = chin_lift_deg(self.model.head_rotation(state.params), self.model.head_rotation(target))
        lifted = (lift > CHIN_LIFT_DEG).to(grid.dtype)[:, None, None, None]
        if not lifted.any() or not geo.underside.any():
            return None
        b = len(grid)
        on_face = (F.grid_sample(state.face.expand(b, -1, -1, -1), grid, align_corners=False) > 0.5).to(grid.dtype)
        radius = max(1, int(round(CHIN_BAND_RADIUS * state.size)))
        ratio = local_area_ratio(grid) if ratio is None else ratio
        return chin_band(geo.underside, geo.seen, ratio, on_face, radius) * lifted

    def variant(self, **options: Any) -> GeometryEngine:
        """This engine with other options (``completion``, ``margin``, ``head_margin``, ``fill_sweeps``,
        ``relief``, ``nod_relief``, ``edge_taper``), sharing its model, segmenter and tables: e.g.
        ``variant(completion=False, margin=0.0)`` for live use, where latency counts more than large turns and
        the output is the crop."""
        options_known = {"completion", "margin", "head_margin", "fill_sweeps", "relief", "nod_relief", "edge_taper"}
        unknown = set(options) - options_known
        if unknown:
            raise ValueError(f"unknown geometry engine option(s): {', '.join(sorted(unknown))}")
        twin = copy.copy(self)
        for name, value in options.items():
            setattr(twin, name, value)
        return twin

    def _beyond_crop(self, out: torch.Tensor, grid: torch.Tensor, layer: torch.Tensor) -> torch.Tensor:
        """Head-layer pixels whose source lies beyond the crop (a large turn or nod near its border) get a
        smooth fill from inside instead of streaks of the border row. Only the crop shows this: at full
        resolution the photo around the crop supplies them."""
        beyond = (grid.abs() > 1.0).any(-1)[:, None].float() * (layer > 0).float()
        if not beyond.any():
            return out
        soft = soft_edge(beyond)
        return out * (1.0 - soft) + harmonic_fill(out, 1.0 - beyond, sweeps=self.fill_sweeps, skip_finest=1) * soft

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
            synthesised=dbg["synthesised"][:1],
            notes=[
                "the geometry engine is training-free: it uses no neural codes and has no pyramid",
                "surface the source never showed is taken from its mirror side, else filled smoothly",
            ],
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
