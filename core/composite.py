"""Put results computed on the face crop back into the full-resolution original photo.

Two ways, both through the crop transform ``T`` (3x3, crop pixels <- original pixels, a similarity):
- ``warp_original``: for flow-based engines. The crop-resolution backward flow is upsampled over the
  crop's footprint and the *original* pixels are resampled, so unchanged areas keep their full detail.
- ``paste_back``: for engines that synthesise pixels (the learned engine, the geometry engine's filled
  mouth): the crop result is mapped back and blended in with a feathered mask.
What a flow reads beyond the crop comes from the photo around it (``around_crop``): the crop view
(``crop_view``) takes it from there as full resolution does, instead of the engine's smooth fill from inside
the crop, and full resolution pastes the crop where the flow reads past the photo's own edge
(``reads_beyond_photo``), where the photo has only its edge repeated.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from core.coords import pixel_grid
from core.engines.base import EngineResult
from core.fit.crop import crop_scale, grown_crop, photo_around_crop

# how far (fraction of the crop, each side) the crop view and full resolution look into the photo around the
# crop for what a large turn or nod brings in from beyond its edge (``around_crop``)
AROUND_CROP = 0.25
# pixels (crop) over which the crop view's photo fades into the engine's smooth fill around made-up pixels
KEEP_HALO_PX = 3
# the finer grain full resolution adds to made-up skin (``add_fine_detail``): what the warped photo holds beyond a
# Gaussian blur of this many crop pixels, on photos at least ``DETAIL_MIN_SCALE`` times the crop's resolution, and
# at most this many grey levels either way (skin's grain; a stray hair or edge is not carried over whole)
DETAIL_SIGMA_PX = 0.5
DETAIL_MIN_SCALE = 1.5
DETAIL_MAX_LEVELS = 16.0
# crop pixels by which the flows of neighbouring crop pixels may differ before full resolution treats them as two
# surfaces (an occluding contour) rather than one stretched or squeezed surface (``occluding_edges``)
FLOW_JUMP_PX = 4.0


def crop_footprint(
    crop_t: np.ndarray,
    crop_size: int,
    original_size: tuple[int, int],
    margin: int = 2,
    part: tuple[float, float, float, float] | None = None,
) -> tuple[int, int, int, int]:
    """Bounding box ``(x0, y0, x1, y1)`` (exclusive ends) of the crop square in the original, clipped; of the
    crop pixels ``part = (x0, y0, x1, y1)`` (exclusive ends) only, when given."""
    inv = np.linalg.inv(crop_t)
    u0, v0, u1, v1 = (0, 0, crop_size, crop_size) if part is None else part
    u0, v0, u1, v1 = u0 - 0.5, v0 - 0.5, u1 - 0.5, v1 - 0.5
    corners = np.array([[u0, v0, 1], [u1, v0, 1], [u0, v1, 1], [u1, v1, 1]]).T
    pts = (inv @ corners)[:2]
    h, w = original_size
    x0 = int(np.clip(np.floor(pts[0].min()) - margin, 0, w))
    y0 = int(np.clip(np.floor(pts[1].min()) - margin, 0, h))
    x1 = int(np.clip(np.ceil(pts[0].max()) + margin + 1, 0, w))
    y1 = int(np.clip(np.ceil(pts[1].max()) + margin + 1, 0, h))
    return x0, y0, x1, y1


def _original_pixels_in_crop(crop_t: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Crop pixel coordinates ``(h, w, 2)`` of every original pixel inside ``box``."""
    x0, y0, x1, y1 = box
    xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64))
    pts = np.stack([xs, ys, np.ones_like(xs)], -1) @ crop_t.T
    return pts[..., :2]


def warp_original(original: np.ndarray, flow: torch.Tensor, crop_t: np.ndarray, feather: float = 0.04) -> np.ndarray:
    """Apply a crop-space backward flow ``(1, 2, S, S)`` (normalised crop units) to the original photo.

    Returns a new RGB uint8 image of the original size. The flow fades to zero over ``feather`` of the
    crop side at the crop border, so the seam is invisible even if the flow is not zero there. Where
    neighbouring crop pixels' flows jump apart (an occluding contour, ``occluding_edges``), each point takes
    the flow of one of the two surfaces rather than a blend of both, which reads what lies between the two
    surfaces in the photo (the crease beside a nose that a turn hides) and drew it as a thick dark line.
    """
    s = flow.shape[-1]
    h, w = original.shape[:2]
    box = crop_footprint(crop_t, s, (h, w))
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return original.copy()
    uv = torch.from_numpy(_original_pixels_in_crop(crop_t, box)).float()  # (h', w', 2) crop pixels
    norm = (uv + 0.5) * (2.0 / s) - 1.0  # crop normalised
    fade = ((1.0 - norm.abs().amax(-1)) / (2.0 * feather)).clamp(0, 1)  # (h', w'), 0 at the crop border
    # normalised crop offsets -> crop pixels -> original pixels (a similarity: one scale, one rotation)
    lin = torch.from_numpy(np.linalg.inv(crop_t)[:2, :2].T).float()
    flow_px = flow[0].float().permute(1, 2, 0) * (s / 2.0)  # (S, S, 2) crop pixels
    flow_here = F.grid_sample(flow.float(), norm[None], align_corners=False, padding_mode="zeros")
    off_orig = (flow_here[0].permute(1, 2, 0) * (s / 2.0) * fade[..., None]) @ lin
    # sample a window grown by the largest offset, so content can come from just outside the box
    reach = float(flow_px.abs().max()) * float(lin.abs().sum(0).max()) if flow_px.numel() else 0.0
    m = int(np.ceil(reach)) + 2
    wx0, wy0, wx1, wy1 = max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)
    window = torch.from_numpy(original[wy0:wy1, wx0:wx1].copy()).permute(2, 0, 1)[None].float()
    ys, xs = torch.meshgrid(torch.arange(y0 - wy0, y1 - wy0), torch.arange(x0 - wx0, x1 - wx0), indexing="ij")
    here = torch.stack([xs, ys], -1).float()  # (h', w', 2) window pixels
    to_norm = torch.tensor([2.0 / (wx1 - wx0), 2.0 / (wy1 - wy0)])

    def read(at: torch.Tensor) -> torch.Tensor:
        """Window colours ``(h, w, 3)`` at window pixels ``at (h, w, 2)``."""
        grid = ((at + 0.5) * to_norm - 1.0)[None]
        return F.grid_sample(window, grid, align_corners=False, padding_mode="border")[0].permute(1, 2, 0)

    warped = read(here + off_orig)
    edges = occluding_edges(flow_px, uv, norm, points_per_px=1.0 / crop_scale(crop_t))
    if edges is not None:
        where, near, far, alpha = edges
        pts, fades = here[where][None], fade[where][None, :, None]
        a = alpha[:, None]
        warped[where] = a * read(pts + (near * fades) @ lin)[0] + (1.0 - a) * read(pts + (far * fades) @ lin)[0]
    out = original.copy()
    out[y0:y1, x0:x1] = warped.round().clamp(0, 255).byte().numpy()
    return out


def occluding_edges(
    flow_px: torch.Tensor,
    uv: torch.Tensor,
    norm: torch.Tensor | None = None,
    points_per_px: float = 1.0,
    jump_px: float = FLOW_JUMP_PX,
) -> tuple[tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """How to upsample a crop flow across its discontinuities without blending two surfaces.

    ``flow_px (S, S, 2)``: a backward flow in crop pixels; ``uv (h, w, 2)``: crop pixel coordinates of the
    points it is upsampled to (``norm``: the same in normalised units, if at hand), ``points_per_px`` of them
    along a crop pixel (full resolution). Between four crop pixels whose flows differ by more than ``jump_px``
    crop pixels (an occluding contour), the four are split into two surfaces (the two flows furthest apart, and
    the flows nearer each of them); a point takes the flow of the surface whose bilinear weights there sum to
    over a half, interpolated among that surface's pixels only, so the contour runs smoothly through the cell
    and nothing from between the two surfaces is read. Returns the points' indices (``torch.nonzero(...,
    as_tuple=True)``), the two surfaces' flows ``(n, 2)`` and the first one's share ``(n,)`` (a one-point
    ramp at the contour, against jagged edges), or None where there is no such contour."""
    s = flow_px.shape[0]
    f = F.pad(flow_px.permute(2, 0, 1)[None], (0, 1, 0, 1), mode="replicate")[0]  # (2, S + 1, S + 1)
    four = torch.stack([f[:, :-1, :-1], f[:, :-1, 1:], f[:, 1:, :-1], f[:, 1:, 1:]])  # each cell's 4 pixels
    jump = (four.amax(0) - four.amin(0)).amax(0) > jump_px  # (S, S): the cell whose top-left pixel is (y, x)
    if not jump.any():
        return None
    # the points near such cells, found at the crop's resolution and then checked exactly
    norm = (uv + 0.5) * (2.0 / s) - 1.0 if norm is None else norm
    near = F.max_pool2d(jump[None, None].float(), 3, stride=1, padding=1)
    maybe = F.grid_sample(near, norm[None] - 1.0 / s, mode="nearest", align_corners=False)[0, 0] > 0.5
    cand = torch.nonzero(maybe, as_tuple=True)
    c0 = torch.floor(uv[cand])  # crop pixel i has its centre at i
    cell = c0.long().clamp(0, s - 1)
    exact = jump[cell[:, 1], cell[:, 0]]
    where = tuple(i[exact] for i in cand)
    if not len(where[0]):
        return None
    c0 = c0[exact]
    t = uv[where] - c0
    ix, iy = c0.long().unbind(-1)
    steps = ((0, 0), (1, 0), (0, 1), (1, 1))
    corners = torch.stack([flow_px[(iy + dy).clamp(0, s - 1), (ix + dx).clamp(0, s - 1)] for dx, dy in steps], 1)
    weights = torch.stack([(t[:, 0] if dx else 1 - t[:, 0]) * (t[:, 1] if dy else 1 - t[:, 1]) for dx, dy in steps], 1)
    # the two surfaces: seeded by the two corner flows furthest apart
    gap = torch.cdist(corners, corners)  # (n, 4, 4)
    pair = gap.flatten(1).argmax(1)
    rows = torch.arange(len(pair))
    seed_a, seed_b = corners[rows, pair // 4], corners[rows, pair % 4]  # (n, 2)
    in_a = ((corners - seed_a[:, None]).norm(dim=-1) <= (corners - seed_b[:, None]).norm(dim=-1)).float()  # (n, 4)
    wa = (weights * in_a).sum(1)
    wb = 1.0 - wa
    flow_a = (weights * in_a)[..., None].mul(corners).sum(1) / wa.clamp(min=1e-6)[:, None]
    flow_b = (weights * (1.0 - in_a))[..., None].mul(corners).sum(1) / wb.clamp(min=1e-6)[:, None]
    # the contour is soft over about one point
    alpha = ((wa - 0.5) * max(points_per_px, 1.0) + 0.5).clamp(0.0, 1.0)
    return where, flow_a, flow_b, alpha


def feathered_mask(mask: np.ndarray, feather_px: float) -> np.ndarray:
    """Soften a binary or soft mask ``(S, S)`` in [0, 1] with a Gaussian of ``feather_px`` pixels."""
    if feather_px <= 0:
        return mask.astype(np.float32)
    k = int(2 * round(3 * feather_px) + 1)
    return cv2.GaussianBlur(mask.astype(np.float32), (k, k), feather_px)


def paste_back(
    original: np.ndarray,
    crop_result: np.ndarray,
    crop_t: np.ndarray,
    mask: np.ndarray | None = None,
    feather: float = 0.03,
) -> np.ndarray:
    """Blend a crop-space RGB result ``(S, S, 3)`` into the original through ``crop_t``.

    ``mask`` ``(S, S)`` in [0, 1] marks what to paste (default: the whole crop); it is feathered by
    ``feather`` of the crop side and faded out at the crop border.
    """
    s = crop_result.shape[0]
    h, w = original.shape[:2]
    if mask is None:
        mask = np.ones((s, s), np.float32)
    border = np.zeros((s, s), np.float32)
    pad = max(1, int(round(feather * s)))
    border[pad:-pad, pad:-pad] = 1.0
    soft = feathered_mask(np.minimum(mask, border), feather * s)
    box = crop_footprint(crop_t, s, (h, w))
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return original.copy()
    # map the crop back with the inverse similarity, only over the footprint
    shift = np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
    to_crop = (crop_t @ shift)[:2]
    size = (x1 - x0, y1 - y0)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    rgb = cv2.warpAffine(crop_result, to_crop, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(soft, to_crop, size, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    out = original.copy()
    region = out[y0:y1, x0:x1].astype(np.float32)
    a = alpha[..., None]
    out[y0:y1, x0:x1] = (rgb.astype(np.float32) * a + region * (1.0 - a)).round().clip(0, 255).astype(np.uint8)
    return out


def compose_result(
    original: np.ndarray, result: EngineResult, i: int, crop_t: np.ndarray, inside: np.ndarray | None = None
) -> np.ndarray:
    """Result ``i`` of an engine batch in the full-resolution ``original``: the crop flow (or its grown
    ``outer_flow``) resamples the original's own pixels and synthesised pixels are pasted over them, and so
    are those whose flow reads past the photo's edge (``reads_beyond_photo``) when ``inside`` (the mask of
    ``around_crop``) is given; an engine without a flow has its crop image pasted back whole."""
    if result.flow is None:
        return paste_back(original, result.images[i], crop_t)
    if result.outer_flow is not None and result.margin > 0:
        s, m = result.flow.shape[-1], result.margin
        # normalised units of the crop -> of the grown canvas
        outer = result.outer_flow[i : i + 1] * (s / (s + 2.0 * m))
        out = warp_original(original, outer, grown_crop(crop_t, m))
    else:
        out = warp_original(original, result.flow[i : i + 1], crop_t)
    warped = out
    paste = result.synthesised[i] if result.synthesised is not None else None
    if inside is not None:
        beyond = reads_beyond_photo(result.flow[i], inside)
        paste = beyond if paste is None else np.maximum(paste, beyond)
    if result.outer_images is not None and result.outer_synthesised is not None and result.margin > 0:
        # the engine's canvas beyond the crop too (the background where the head moved away across its edge),
        # feathered as the crop's paste
        s, m = result.flow.shape[-1], result.margin
        outer_paste = result.outer_synthesised[i].copy()
        if paste is not None:
            outer_paste[m : m + s, m : m + s] = paste
        if outer_paste.max() > 0:
            grown = grown_crop(crop_t, m)
            out = paste_back(out, result.outer_images[i], grown, mask=outer_paste, feather=0.004 * s / (s + 2 * m))
    elif paste is not None and paste.max() > 0:
        out = paste_back(out, result.images[i], crop_t, mask=paste, feather=0.004)
    if result.detail is not None:
        grain_flow = None if result.detail_flow is None else result.detail_flow[i]
        out = add_fine_detail(out, warped, result.detail[i], crop_t, grain_flow)
    return out


def add_fine_detail(
    image: np.ndarray, warped: np.ndarray, mask: np.ndarray, crop_t: np.ndarray, grain_flow: torch.Tensor | None = None
) -> np.ndarray:
    """``image`` with fine grain added where the crop mask ``mask (S, S)`` in [0, 1] says: what ``warped`` (the
    photo as the flow moved it, the size of ``image``) holds beyond a Gaussian blur of ``DETAIL_SIGMA_PX`` crop
    pixels, read where ``grain_flow (2, S, S)`` points (a backward flow on the crop, normalised units; None:
    in place). A smooth fill pasted from the crop (``EngineResult.detail``) then shows the photo's grain
    instead of a blurred patch in a photo several times the crop's resolution; on photos near the crop's
    resolution (under ``DETAIL_MIN_SCALE`` times) nothing is added."""
    points_per_px = 1.0 / crop_scale(crop_t)
    if points_per_px < DETAIL_MIN_SCALE or mask.max() <= 0.0:
        return image
    s = mask.shape[0]
    vs, us = np.nonzero(mask > 0)
    step = np.zeros((2, s, s), np.float32) if grain_flow is None else grain_flow.float().numpy() * (s / 2.0)
    # the footprint of the masked pixels and of those they read
    u_all = np.concatenate([us, us + step[0, vs, us]])
    v_all = np.concatenate([vs, vs + step[1, vs, us]])
    part = (np.floor(u_all.min()) - 1, np.floor(v_all.min()) - 1, np.ceil(u_all.max()) + 2, np.ceil(v_all.max()) + 2)
    sigma = DETAIL_SIGMA_PX * points_per_px
    x0, y0, x1, y1 = crop_footprint(crop_t, s, image.shape[:2], margin=int(np.ceil(3 * sigma)), part=part)
    if x1 <= x0 or y1 <= y0:
        return image
    to_crop = (crop_t @ np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64))[:2]
    size, flags = (x1 - x0, y1 - y0), cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    alpha = cv2.warpAffine(mask.astype(np.float32), to_crop, size, flags=flags, borderValue=0)
    region = warped[y0:y1, x0:x1].astype(np.float32)
    grain = np.clip(region - cv2.GaussianBlur(region, (0, 0), sigma), -DETAIL_MAX_LEVELS, DETAIL_MAX_LEVELS)
    # where each photo pixel of the box reads its grain: the crop-pixel steps as photo pixels (a similarity)
    lin = np.linalg.inv(crop_t)[:2, :2]
    su, sv = (cv2.warpAffine(step[c], to_crop, size, flags=flags) for c in (0, 1))
    map_x = (np.arange(size[0])[None] + lin[0, 0] * su + lin[0, 1] * sv).astype(np.float32)
    map_y = (np.arange(size[1])[:, None] + lin[1, 0] * su + lin[1, 1] * sv).astype(np.float32)
    grain = cv2.remap(grain, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    out = image.copy()
    out[y0:y1, x0:x1] = (out[y0:y1, x0:x1] + grain * alpha[..., None]).round().clip(0, 255).astype(np.uint8)
    return out


def around_crop(original: np.ndarray, crop_t: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo around an S-pixel crop at the crop's scale, ``AROUND_CROP`` of the crop beyond it on each side,
    and where it lies in the photo (``core.fit.crop.photo_around_crop``): what ``crop_view`` and
    ``compose_result`` read beyond the crop."""
    return photo_around_crop(original, crop_t, size, int(round(AROUND_CROP * size)))


def crop_view(result: EngineResult, i: int, around: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Result ``i`` of an engine batch as a crop, with what its flow reads beyond the crop taken from the photo
    around it (``fill_beyond_crop``; ``around``, ``inside``: ``around_crop``); an engine without a flow's image
    as it is."""
    if result.flow is None:
        return result.images[i]
    keep = None if result.synthesised is None else result.synthesised[i]
    return fill_beyond_crop(result.images[i], result.flow[i], keep, around, inside)


def _read_around(flow: torch.Tensor, around: torch.Tensor) -> torch.Tensor:
    """``around (C, S + 2m, S + 2m)`` (the photo around an S-pixel crop at its scale, the crop its middle)
    sampled where the backward ``flow (2, S, S)`` of the crop reads: ``(C, S, S)``; zeros beyond ``around``
    (for its ``inside`` mask: not known to be in the photo)."""
    s, n = flow.shape[-1], around.shape[-1]
    grid = pixel_grid((s, s)) + flow.float().permute(1, 2, 0)  # normalised crop units
    # the crop's normalised units in those of the grown square
    return F.grid_sample(around[None].float(), (grid * (s / n))[None], align_corners=False, padding_mode="zeros")[0]


def reads_beyond_photo(flow: torch.Tensor, inside: np.ndarray) -> np.ndarray:
    """``(S, S)`` float32 in [0, 1]: crop pixels whose backward ``flow (2, S, S)`` reads beyond the photo's
    edge (``inside``: ``core.fit.crop.photo_around_crop``'s mask). Full resolution has nothing there but the
    photo's edge repeated (streaks), so those pixels are pasted from the crop: the engine's own smooth fill,
    as the crop view shows them (``fill_beyond_crop``)."""
    read = _read_around(flow, torch.from_numpy(inside)[None])[0]
    return (1.0 - read).clamp(0.0, 1.0).numpy()


def fill_beyond_crop(
    image: np.ndarray, flow: torch.Tensor, keep: np.ndarray | None, around: np.ndarray, inside: np.ndarray
) -> np.ndarray:
    """A crop ``image (S, S, 3)`` uint8 with its pixels whose backward ``flow (2, S, S)`` (normalised crop
    units) samples beyond the crop resampled from ``around`` ``(S + 2m, S + 2m, 3)``, the photo around the crop
    at its scale (``core.fit.crop.photo_around_crop``), where that lies in the photo (``inside``, same side).

    An engine can only fill such pixels from inside the crop (a blur of the crown a nod brings down, of the
    neck a raised chin lifts); the photo has them, as full-resolution output shows. ``keep (S, S)`` in [0, 1]:
    pixels the engine made up (its ``synthesised`` mask), which stay the engine's, as does its fill up to
    ``KEEP_HALO_PX`` around them (fading into the photo over twice that). The pixels next to the
    replaced ones are resampled too, which changes nothing but the engine's soft edge of its fill: inside the
    crop, ``around`` is the crop.
    """
    s = image.shape[0]
    grid = pixel_grid((s, s)) + flow.float().permute(1, 2, 0)  # (S, S, 2) normalised crop units
    beyond = (grid.abs() > 1.0).any(-1)
    if not bool(beyond.any()):
        return image
    reach = F.max_pool2d(beyond[None, None].float(), 5, stride=1, padding=2)[0, 0]  # the fill's soft edge
    src = torch.cat([torch.from_numpy(around).float().permute(2, 0, 1), torch.from_numpy(inside)[None]])
    sampled = _read_around(flow, src)
    weight = reach * (sampled[3] > 0.999).float()
    if keep is not None:
        # made-up pixels are smooth: they stay in the engine's smooth fill, which fades into the photo over a
        # few pixels around them (sharp photo pixels right next to them would draw their outline)
        made = torch.from_numpy(np.asarray(keep, np.float32))[None, None]
        k = 2 * KEEP_HALO_PX + 1
        halo = F.avg_pool2d(F.max_pool2d(made, k, 1, KEEP_HALO_PX), k, 1, KEEP_HALO_PX, count_include_pad=False)
        weight = weight * (1.0 - halo[0, 0])
    out = torch.from_numpy(image).float() * (1.0 - weight[..., None]) + sampled[:3].permute(1, 2, 0) * weight[..., None]
    return out.round().clamp(0, 255).to(torch.uint8).numpy()
