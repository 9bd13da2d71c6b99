"""The square face crop of the paper (design/gdpw-model.md §3.2) and similarity warps.

The paper takes the bounding box (left, top, right, bottom) of 68 face-alignment landmarks, sets
``old = ((right - left) + (bottom - top)) / 2 * 1.1`` and crops a square of side ``1.35 * old``, centred
horizontally on the box and spanning ``cy - 0.6 * side`` to ``cy + 0.4 * side`` vertically (shifted up so
hair and forehead are in; ``cy`` the box centre), resized to 256 x 256.

MediaPipe's 478 points reach up to the hairline, so their box is about 25 % taller than the 68-point box
(which starts at the eyebrows) and the same formula would give a looser crop centred too high. We calibrate
by taking the box over the 68 MediaPipe points that correspond to the 68-point scheme (``MP_68``: jaw
outline, brows, nose, eyes, lips; the usual correspondence), so the paper's constants apply unchanged and
the crops look like FOMM/VoxCeleb crops (chin near the bottom fifth, hair in, ears at the edges).

Transforms are 3x3 matrices mapping original pixel coordinates to crop pixel coordinates
(``crop <- original``, pixel centres at integers, ``core.coords``): a square whose edges are at
``centre +- side / 2`` in the original fills the crop edge to edge, so ``u_crop = k (u - cx) + (S - 1) / 2``
with ``k = S / side``. Parts of the square outside the image are filled by replicating the border pixels
(default: no hard black edge for the network to see) or with zeros (``border="zeros"``);
``outside_fraction`` reports how much of the crop was filled that way.
"""

from __future__ import annotations

import numpy as np

# MediaPipe indices of the 68-point scheme (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, lips 48-67).
MP_68 = np.array(
    [
        162,
        234,
        93,
        58,
        172,
        136,
        149,
        148,
        152,
        377,
        378,
        365,
        397,
        288,
        323,
        454,
        389,
        71,
        63,
        105,
        66,
        107,
        336,
        296,
        334,
        293,
        301,
        168,
        197,
        5,
        4,
        75,
        97,
        2,
        326,
        305,
        33,
        160,
        158,
        133,
        153,
        144,
        362,
        385,
        387,
        263,
        373,
        380,
        61,
        39,
        37,
        0,
        267,
        269,
        291,
        405,
        314,
        17,
        84,
        181,
        78,
        82,
        13,
        312,
        308,
        317,
        14,
        87,
    ]
)

BOX_ENLARGE = 1.1  # old_size = mean box side * 1.1
CROP_SCALE = 1.35  # final crop side = 1.35 * old_size
CROP_UP = 0.1  # square centre = box centre - 0.1 * side (spans cy - 0.6 side .. cy + 0.4 side)


def face_box(points: np.ndarray) -> np.ndarray:
    """68-point-equivalent landmark box ``(..., 4)`` = (left, top, right, bottom) from ``(..., 478, 2+)``."""
    p = points[..., MP_68, :2]
    return np.concatenate([p.min(-2), p.max(-2)], axis=-1)


def crop_square(points: np.ndarray, scale: float = CROP_SCALE) -> tuple[np.ndarray, float]:
    """The paper's crop for landmarks ``(478, 2+)`` in pixels: square centre ``(2,)`` and side (pixels)."""
    left, top, right, bottom = face_box(points)
    old = ((right - left) + (bottom - top)) / 2.0 * BOX_ENLARGE
    side = scale * old
    centre = np.array([(left + right) / 2.0, (top + bottom) / 2.0 - CROP_UP * side])
    return centre, float(side)


def square_transform(centre: np.ndarray, side: float, size: int) -> np.ndarray:
    """3x3 ``crop <- original`` for a square of ``side`` pixels centred at ``centre`` resized to ``size``."""
    k = size / side
    c = (size - 1) / 2.0
    return np.array([[k, 0.0, c - k * centre[0]], [0.0, k, c - k * centre[1]], [0.0, 0.0, 1.0]])


def transform_points(mat: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 3x3 affine ``mat`` to pixel points ``(..., 2)``."""
    pts = np.asarray(points, dtype=np.float64)
    return (pts @ mat[:2, :2].T + mat[:2, 2]).astype(np.asarray(points).dtype)


def crop_scale(mat: np.ndarray) -> float:
    """Crop pixels per original pixel of a crop transform ``mat`` (3x3, crop <- original, a similarity)."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(mat, dtype=np.float64)[:2, :2]))))


def warp_image(image: np.ndarray, mat: np.ndarray, size: int, border: str = "replicate") -> np.ndarray:
    """Resample ``image (H, W, C)`` into a ``(size, size, C)`` crop with ``mat`` (crop <- original).

    Strong downscales first shrink the image with area averaging so bilinear sampling does not alias.
    ``border``: ``"replicate"`` (edge pixels repeated) or ``"zeros"``.
    """
    import cv2

    if border not in ("replicate", "zeros"):
        raise ValueError(f"border must be 'replicate' or 'zeros', got '{border}'")
    src, m = image, np.asarray(mat, dtype=np.float64)
    k = crop_scale(m)
    if k < 0.5:
        f = int(1.0 / k)
        h, w = image.shape[:2]
        src = cv2.resize(image, (max(1, round(w / f)), max(1, round(h / f))), interpolation=cv2.INTER_AREA)
        sx, sy = src.shape[1] / w, src.shape[0] / h
        shrink = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
        m = m @ np.linalg.inv(shrink)
    mode = cv2.BORDER_REPLICATE if border == "replicate" else cv2.BORDER_CONSTANT
    return cv2.warpAffine(src, m[:2], (size, size), flags=cv2.INTER_LINEAR, borderMode=mode, borderValue=0)


def grown_crop(mat: np.ndarray, margin: int) -> np.ndarray:
    """The transform of a crop ``mat`` (crop <- original) grown by ``margin`` pixels on each side (its pixel 0
    is the crop's -margin)."""
    shift = np.array([[1.0, 0.0, margin], [0.0, 1.0, margin], [0.0, 0.0, 1.0]])
    return shift @ np.asarray(mat, np.float64)


def photo_around_crop(image: np.ndarray, mat: np.ndarray, size: int, margin: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo around a crop at the crop's scale: ``(size + 2 margin)``-square RGB whose middle ``size``
    square is the crop ``warp_image(image, mat, size)``, and a float32 mask of the same side, 1 where a pixel
    lies inside ``image`` (0 where the square runs past the photo's edge and its pixels were replicated)."""
    grown = grown_crop(mat, margin)
    n = size + 2 * margin
    around = warp_image(image, grown, n)
    # each pixel centre taken back to the photo; bilinear sampling is exact within half a pixel of its edge
    uv = np.stack(np.meshgrid(np.arange(n, dtype=np.float64), np.arange(n, dtype=np.float64)), -1)
    xy = transform_points(np.linalg.inv(grown), uv)
    h, w = image.shape[:2]
    inside = (xy[..., 0] >= -0.5) & (xy[..., 0] <= w - 0.5) & (xy[..., 1] >= -0.5) & (xy[..., 1] <= h - 0.5)
    return around, inside.astype(np.float32)


def outside_fraction(mat: np.ndarray, image_size: tuple[int, int], size: int) -> float:
    """Fraction of the crop's area that lies outside the original image (``image_size`` = (H, W))."""
    inv = np.linalg.inv(mat)
    h, w = image_size
    lo = transform_points(inv, np.array([-0.5, -0.5]))
    hi = transform_points(inv, np.array([size - 0.5, size - 0.5]))
    inside = np.clip(np.minimum(hi, [w - 0.5, h - 0.5]) - np.maximum(lo, [-0.5, -0.5]), 0, None)
    return float(1.0 - inside.prod() / np.prod(hi - lo))


def face_crop(points: np.ndarray, size: int = 256) -> np.ndarray:
    """The paper's crop transform (3x3, crop <- original) from landmarks ``(478, 2+)`` in original pixels."""
    centre, side = crop_square(points)
    return square_transform(centre, side, size)
