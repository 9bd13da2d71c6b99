"""Occlusion-aware completion: target face pixels whose surface point the source never showed.

When the head turns, nods or changes shape, parts of the face and neck come into view that were hidden in
the source (the far cheek and ear side, the neck under a raised chin, the side of the nose). Stretching the
nearest visible pixels over them makes streaks. Instead, per hidden target pixel:

1. **Mirror**: if the mirror point of its surface point (``core.face.mirror``: the vertex at ``(-x, y, z)``)
   is visible in the source, and not edge-on there (``GeometryEngine.target_geometry`` decides both), the
   source pixel there is used, colour-matched (also for visible pixels that the source saw so foreshortened
   that the mirror side shows them at least twice as large): the low-frequency difference between each
   pixel and its mirror point, measured where both are visible and the warp reads the person (``measured``:
   where the mesh reaches past the real face's edge it reads the background), is carried over the region
   by harmonic interpolation (a seamless-cloning offset), so the other side's shading and skin tone are kept
   and only the detail comes from the mirror.
2. **Membrane**: where the mirror cannot help and the flow's continuation would stretch a sliver of source
   pixels into streaks (the neck under a raised chin), a smooth harmonic fill from the pixels around the
   region: plain skin, never streaks; likewise for visible inner-face skin the warp would stretch that much
   with no sharper mirror, and for the underside of the jaw stretched that much, however thin, when a raised
   chin shows it (``smeared``), whose fill takes its colour from the face's own skin only, not from the hair
   or background beyond the face's edge. When the chin is raised, the band of the underside the source saw
   edge-on is filled whole, like the hidden skin, from the chin above it and the neck below (``chin_band``).
   Elsewhere (ears, skull, neck sides, mostly under hair) the flow's continuation of what surrounds the region
   is kept, and on the crown a nod shows (``crown_vertices``) even where it stretches: the photo's hair,
   stretched, still looks like hair, where a membrane is a flat blob of its colour with an edge, which the
   full-resolution photo's sharp hair around it makes plain.

All maps are ``(B, C, S, S)`` on the face crop; grids are ``grid_sample`` grids in normalised units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.engines.fill import harmonic_fill
from core.engines.masks import box_blur, soft_edge
from core.face.base import FaceModel, vertex_normals
from core.face.mirror import mirror_map, symmetric_vertices

# regions left to the flow (they move on their own, or are drawn apart)
NOT_SKIN = ("eyes", "eyelashes", "eye_occlusion", "eye_blend", "lacrimal", "mouth_interior")
# the mirror side stands in only on the inner face: ears, skull and neck sides are often under hair that the
# mirror side does not have, and there the flow's continuation of the hair looks right
MIRRORED = ("face_narrow",)
# a warp that stretches the source's area more than this many times draws streaks (``overstretched``)
STRETCH_LIMIT = 3.0
# how deep (crop pixels) into the sharp skin beside a smooth fill its grain is read from (``reflected_grain``)
GRAIN_DEPTH_PX = 10.0


@dataclass
class Completion:
    """The completed image and where it was made up: ``image (B, 3, S, S)``, ``mirrored`` and ``membrane``
    ``(B, 1, S, S)`` in [0, 1] (soft at their edges); ``grain_mask (B, 1, S, S)``: the part of ``membrane`` over
    skin the source did show, too stretched to warp, that may take finer grain, and how fully, and
    ``grain_flow (B, 2, S, S)``: where in ``image`` that grain may be read (``reflected_grain``; a backward
    flow in normalised units); both None where there is none."""

    image: torch.Tensor
    mirrored: torch.Tensor
    membrane: torch.Tensor
    grain_mask: torch.Tensor | None = None
    grain_flow: torch.Tensor | None = None

    @property
    def synthesised(self) -> torch.Tensor:
        return torch.maximum(self.mirrored, self.membrane)


def skin_vertices(model: FaceModel) -> torch.Tensor:
    """``(N,)`` 1.0 on the vertices completion applies to (skin: not in ``NOT_SKIN``), else 0.0. Hidden eyes
    are left to the flow and the opened mouth to the engine's mouth synthesis."""
    skin = torch.ones(model.n_vertices)
    for name in NOT_SKIN:
        if name in model.regions:
            skin = skin * (1.0 - model.regions[name].float().cpu())
    return skin


def underside_vertices(model: FaceModel, max_normal_y: float = -0.3) -> torch.Tensor:
    """``(N,)`` 1.0 on the skin under the jaw: below the mouth socket, its rest normal pointing down
    (``n_y < max_normal_y``). A raised chin shows it edge-on from the front and stretches it into thin streaks
    along the jaw line. 0.0 everywhere for a model without a ``mouth_socket`` region (FLAME)."""
    if "mouth_socket" not in model.regions:
        return torch.zeros(model.n_vertices)
    rest = model.v_template.detach().cpu().double()
    normals = torch.from_numpy(vertex_normals(rest.numpy(), model.faces.cpu().numpy()))
    below = rest[:, 1] < rest[model.regions["mouth_socket"].cpu(), 1].min()
    return ((normals[:, 1] < max_normal_y) & below).float() * skin_vertices(model)


def crown_vertices(model: FaceModel, below_top_cm: float = 2.0) -> torch.Tensor:
    """``(N,)`` 1.0 on the top of the skull: ``head_neck`` vertices of the neutral mesh higher than
    ``below_top_cm`` under the top of the inner face (``face_narrow``); 0.0 everywhere for a model without
    those regions (FLAME). A nod brings it into view from a source that saw little of it, under hair."""
    if "head_neck" not in model.regions or "face_narrow" not in model.regions:
        return torch.zeros(model.n_vertices)
    height = model.v_template.detach().cpu()[:, 1]
    top = height[model.regions["face_narrow"].cpu()].max()
    return (model.regions["head_neck"].cpu() & (height > top - below_top_cm)).float()


def mirror_partners(model: FaceModel) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N,)`` mirror vertex of every vertex of ``model`` (from its neutral mesh), and ``(N,)`` 1.0 where that
    partner may stand in for the vertex (symmetric skin of the ``MIRRORED`` regions), else 0.0. A model
    without those regions (FLAME) mirrors all of its skin."""
    with torch.no_grad():
        template = model(model.neutral(1))[0].cpu().numpy().astype(np.float64)
    partner = mirror_map(template)
    ok = torch.from_numpy(symmetric_vertices(template, partner, tol=0.05).astype(np.float32))
    regions = [model.regions[n].float().cpu() for n in MIRRORED if n in model.regions]
    if regions:
        ok = ok * torch.stack(regions).amax(0)
    return torch.from_numpy(partner), ok * skin_vertices(model)


def area_ratio(grid: torch.Tensor) -> torch.Tensor:
    """``(B, 1, S, S)``: source pixels per target pixel of the map ``grid (B, S, S, 2)`` (normalised source
    positions of each target pixel), ``|det J|`` by central differences in pixel units; small where the source
    saw the surface foreshortened, so that its few pixels are stretched over many."""
    s = grid.shape[1]
    g = grid.permute(0, 3, 1, 2) * (s / 2.0)
    p = F.pad(g, (1, 1, 1, 1), mode="replicate")
    dx = (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) / 2.0
    dy = (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) / 2.0
    return (dx[:, :1] * dy[:, 1:] - dx[:, 1:] * dy[:, :1]).abs()


def local_area_ratio(grid: torch.Tensor) -> torch.Tensor:
    """``(B, 1, S, S)``: ``area_ratio`` of ``grid (B, S, S, 2)`` averaged over 3 x 3 pixels."""
    return box_blur(area_ratio(grid), 1)


def overstretched(grid: torch.Tensor, limit: float = STRETCH_LIMIT, ratio: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, 1, S, S)`` 0/1: where the map ``grid (B, S, S, 2)`` stretches the source's area more than ``limit``
    times (``local_area_ratio`` under ``1 / limit``; ``ratio``: that ratio when already computed): streaks if
    warped, or a sliver seen edge-on."""
    return ((local_area_ratio(grid) if ratio is None else ratio) < 1.0 / limit).float()


def chin_band(
    underside: torch.Tensor,
    seen: torch.Tensor,
    ratio: torch.Tensor,
    on_face: torch.Tensor,
    radius: int,
    limit: float = STRETCH_LIMIT,
) -> torch.Tensor:
    """``(B, 1, S, S)`` 0/1: the underside of the jaw a raised chin brings into view, as one region: pixels of
    ``underside`` (``underside_vertices``, rasterised) where the underside within ``radius`` pixels was seen,
    on the whole, stretched more than ``limit`` times (``ratio (B, 1, S, S)``: ``local_area_ratio`` of the warp;
    pixels not ``seen`` count as nothing seen) and whose warp reads the source's face (``on_face``), not a
    collar or a microphone in front of the neck.

    Per pixel, that band is a patchwork: strips the source never showed, strips stretched into streaks and
    thin slivers of the chin's edge that the warp keeps, which draw the jaw line again as dark lines across
    the fill. The caller fills it whole."""
    mean = box_blur(ratio * seen * underside, radius) / box_blur(underside, radius).clamp(min=1e-6)
    return underside * (mean < 1.0 / limit).to(ratio.dtype) * on_face


def foreshortened(
    grid: torch.Tensor, mirror_grid: torch.Tensor, seen: torch.Tensor, mirror_seen: torch.Tensor, limit: float = 0.5
) -> torch.Tensor:
    """``(B, 1, S, S)`` 0/1: visible pixels better taken from their mirror point: the direct source stretches
    them (fewer than ``limit`` source pixels per pixel) and the mirror side saw them at least twice as large
    (the side of the face a turn brings round, when the source looked at it from the other side)."""
    direct = box_blur(area_ratio(grid) * seen, 2) / box_blur(seen, 2).clamp(min=1e-3)
    mirror = box_blur(area_ratio(mirror_grid) * mirror_seen, 2) / box_blur(mirror_seen, 2).clamp(min=1e-3)
    return seen * mirror_seen * ((direct < limit) & (mirror > 2.0 * direct)).float()


def complete_hidden(
    image: torch.Tensor,
    source: torch.Tensor,
    hidden: torch.Tensor,
    seen: torch.Tensor,
    mirror_grid: torch.Tensor,
    mirror_seen: torch.Tensor,
    poor: torch.Tensor | None = None,
    stretched: torch.Tensor | None = None,
    smeared: torch.Tensor | None = None,
    skin: torch.Tensor | None = None,
    measured: torch.Tensor | None = None,
    sweeps: int = 12,
) -> Completion:
    """Complete ``image``: its ``hidden`` pixels, and the ``poor`` and ``smeared`` ones (module docstring).

    Args:
        image: ``(B, 3, S, S)`` the warped target in [0, 1].
        source: ``(1, 3, S, S)`` the source crop.
        hidden: ``(B, 1, S, S)`` 0/1 target mesh pixels whose surface point is hidden in the source.
        seen: ``(B, 1, S, S)`` 0/1 target mesh pixels whose surface point is visible in the source.
        mirror_grid: ``(B, S, S, 2)`` where each pixel's mirror point lies in the source.
        mirror_seen: ``(B, 1, S, S)`` 0/1 where that mirror point is visible in the source (and may be used).
        poor: ``(B, 1, S, S)`` 0/1 visible pixels to take from the mirror side too (``foreshortened``).
        stretched: ``(B, 1, S, S)`` 0/1 where ``image`` itself is too stretched to keep (default: everywhere):
            hidden pixels without a mirror get the membrane only there.
        smeared: ``(B, 1, S, S)`` 0/1 visible pixels so stretched that they would streak, with no better
            mirror: they get a membrane of their own, from ``skin`` only.
        skin: ``(B, 1, S, S)`` 0/1 pixels whose colour that membrane carries (default: all it does not
            replace): the face's own skin as warped, where the warp reads the person (the mesh's rim reads
            the background beyond the real face's edge). The side of the face a turn brings round borders hair
            and background, which the source's foreshortened cheek reached over; from all of its
            surroundings the membrane was a pale fog of the background's colour across the face's edge.
        measured: ``(B, 1, S, S)`` 0/1 pixels of ``image`` the mirror's colour offset may be measured on
            (default: all): where the warp reads the person, not the background beside it.
    """
    b = image.shape[0]
    empty = torch.zeros_like(hidden)
    use = hidden * mirror_seen if poor is None else torch.maximum(hidden * mirror_seen, poor)
    if not hidden.any() and not use.any() and (smeared is None or not smeared.any()):
        return Completion(image, empty, empty)
    mirror = F.grid_sample(source.expand(b, -1, -1, -1), mirror_grid, align_corners=False, padding_mode="border")
    out = image
    mirrored = empty
    if use.any():
        both = seen * mirror_seen * (1.0 if measured is None else measured)
        # the offset is measured at a scale of ~6 % of the crop: shading, not detail
        r = max(2, image.shape[-1] // 32)
        weight = box_blur(both, r)
        diff = box_blur((image - mirror) * both, r) / weight.clamp(min=1e-3)
        offset = harmonic_fill(diff, (weight > 0.2).float(), sweeps=sweeps, skip_finest=1, within=use, pad=2 * r)
        mirrored = soft_edge(use)
        out = out * (1.0 - mirrored) + (mirror + offset).clamp(0, 1) * mirrored
    rest = hidden * (1.0 - mirror_seen) * (1.0 if stretched is None else stretched)
    smear = empty if smeared is None else smeared * (1.0 - use) * (1.0 - rest)
    membrane = empty
    grain_mask = grain_flow = None
    if rest.any():
        fill = harmonic_fill(out, 1.0 - torch.maximum(rest, smear), sweeps=sweeps, skip_finest=1)
        membrane = soft_edge(rest)
        out = out * (1.0 - membrane) + fill * membrane
    if smear.any():
        keep = 1.0 - torch.maximum(torch.maximum(rest, smear), use)
        if skin is not None:  # an image of the batch without any such skin takes all it does not replace
            has_skin = (keep * skin).flatten(1).amax(1) > 0.5
            keep = torch.where(has_skin[:, None, None, None], keep * skin, keep)
        fill = harmonic_fill(out, keep, sweeps=sweeps, skip_finest=1)
        smudge = soft_edge(smear)
        out = out * (1.0 - smudge) + fill * smudge
        membrane = torch.maximum(membrane, smudge)
        grain_flow, found = reflected_grain(smudge, keep)
        grain_mask = smudge * found
    return Completion(out, mirrored, membrane, grain_mask, grain_flow)


def reflected_grain(
    region: torch.Tensor, donor: torch.Tensor, depth_px: float = GRAIN_DEPTH_PX
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the pixels of ``region`` (``(B, 1, S, S)``, > 0) may read fine grain, and how fully: ``(B, 2, S, S)``
    a backward flow (normalised units) into ``donor`` (``(B, 1, S, S)``, > 0.5), and ``(B, 1, S, S)`` in [0, 1]
    (0 where it found no donor pixel; soft at the change).

    A smooth fill of skin carries no grain of its own. Read this way, grain comes from skin the photo shows
    sharply beside the fill, mirrored across their border as in a reflection: the same kind of texture at the
    same scale, in no direction stretched, where the stretched photo under the fill would draw streaks. A pixel
    at distance ``d`` from the donor reads it on the line to its nearest donor pixel, at a depth that grows with
    ``d`` up to ``depth_px`` and falls back, back and forth: its mirror image near the border, a mirrored
    repeat of the donor's first ``depth_px`` pixels beyond; half that depth where the donor is thinner, else
    nothing."""
    from scipy.ndimage import distance_transform_edt

    b, _, h, w = region.shape
    flow = torch.zeros(b, 2, h, w, dtype=region.dtype)
    found = torch.zeros(b, 1, h, w, dtype=region.dtype)
    pad = int(np.ceil(3 * depth_px))  # donors are looked for this far around the region only
    for i in range(b):
        inside = region[i, 0].numpy() > 0
        good = donor[i, 0].numpy() > 0.5
        py, px = np.nonzero(inside)
        if not len(py):
            continue
        y0, x0 = max(0, py.min() - pad), max(0, px.min() - pad)
        y1, x1 = min(h, py.max() + pad + 1), min(w, px.max() + pad + 1)
        if not good[y0:y1, x0:x1].any():
            continue
        dist, (near_y, near_x) = distance_transform_edt(~good[y0:y1, x0:x1], return_indices=True)
        qy, qx = near_y[py - y0, px - x0] + y0, near_x[py - y0, px - x0] + x0
        d = np.maximum(dist[py - y0, px - x0], 1e-6)
        # the depth read at: d near the border, then back and forth between 0 and depth_px (a triangle wave)
        depth = depth_px - np.abs(np.mod(d, 2.0 * depth_px) - depth_px)
        uy, ux = (qy - py) / d, (qx - px) / d  # towards the donor
        take_y, take_x = np.zeros_like(qy), np.zeros_like(qx)
        pending = np.ones(len(py), bool)
        for k in (1.0, 0.5):
            ty, tx = np.rint(qy + k * depth * uy).astype(int), np.rint(qx + k * depth * ux).astype(int)
            ok = pending & (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w)
            ok[ok] = good[ty[ok], tx[ok]]
            take_y[ok], take_x[ok] = ty[ok], tx[ok]
            pending &= ~ok
        hit = ~pending
        where = torch.from_numpy(inside)
        flow[i, 0][where] = torch.from_numpy(np.where(hit, (take_x - px) * (2.0 / w), 0.0)).to(flow.dtype)
        flow[i, 1][where] = torch.from_numpy(np.where(hit, (take_y - py) * (2.0 / h), 0.0)).to(flow.dtype)
        found[i, 0][where] = torch.from_numpy(hit.astype(np.float32)).to(found.dtype)
    inside = (region > 0).to(found.dtype)  # softened within the region only, not towards what lies beyond it
    return flow, box_blur(found, 2) / box_blur(inside, 2).clamp(min=1e-6) * inside
