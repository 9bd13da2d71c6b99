"""Face detection and the 478 MediaPipe Face Mesh landmarks (legacy ``solutions.face_mesh``, refined irises).

Points are returned in **pixel coordinates of the image given** (``core.coords``: the centre of pixel
(row r, column c) is at (u, v) = (c, r)) plus a depth: ``(478, 3)`` = (u, v, z) where z is MediaPipe's
relative depth converted to the same pixel scale as u (MediaPipe scales z like x, i.e. by the image width),
smaller = nearer, origin roughly at the centre of the head. MediaPipe's normalised x in [0, 1] measures from
the left image *edge*, so u = x * W - 0.5.

Still images are detected in two passes: on a copy whose longer side is at most ``detect_side`` (large
photos; when it finds nothing, overlapping tiles of the original are searched so that faces down to about
``MIN_FACE_PX`` wide, e.g. 116 px in a 1920 x 1080 photo, are found), then again on a square crop of the
original around the face resized to ``refine_side``, so that MediaPipe always sees the face at about the
scale it was trained for. Video mode uses MediaPipe's tracker.
Several faces: the largest (landmark box area) is taken, and ``faces_found`` says how many there were.
MediaPipe's model ships inside the wheel: nothing is downloaded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from core.logs import quiet_native

log = logging.getLogger(__name__)

N_LANDMARKS = 478
# MediaPipe indices used elsewhere: outer eye corners (inter-ocular distance) and iris centres.
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263  # subject's right (image left), subject's left
RIGHT_IRIS_CENTRE, LEFT_IRIS_CENTRE = 468, 473


TILE_MIN = 256  # the tile search's smallest tile side (original pixels)
TILE_MAX = 768  # ... and largest, so that a small face stays large enough in any photo
TILE_SIDE = 512  # each tile is resized to this side for MediaPipe
MIN_FACE_PX = 80  # the smallest face width (landmark box, pixels) the still-image search is meant to find


def _tile_centres(w: int, h: int, side: int) -> list[tuple[float, float]]:
    """Centres (x, y) of square tiles of ``side`` covering a ``w x h`` image with half-tile overlap."""

    def axis(n: int) -> np.ndarray:
        count = max(1, int(np.ceil((n - side) / (side / 2))) + 1)
        return np.linspace(side / 2 - 0.5, n - side / 2 - 0.5, count) if n > side else np.array([n / 2 - 0.5])

    return [(float(x), float(y)) for y in axis(h) for x in axis(w)]


class NoFaceError(ValueError):
    """No face was found; the message names the input."""


@dataclass
class Detection:
    """The largest detected face (and the others).

    Attributes:
        points: ``(478, 3)`` float32, (u, v) pixels of the image given and z depth in pixels (smaller nearer).
        faces_found: how many faces MediaPipe reported in the image.
        others: first-pass landmarks of the other faces, largest first (not refined).
    """

    points: np.ndarray
    faces_found: int
    others: list[np.ndarray] = field(default_factory=list)

    @property
    def box(self) -> tuple[float, float, float, float]:
        """Landmark bounding box (left, top, right, bottom) in pixels."""
        lo, hi = self.points[:, :2].min(0), self.points[:, :2].max(0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def inter_ocular(points: np.ndarray) -> np.ndarray:
    """Distance between the outer eye corners, ``(..., 478, 2+) -> (...)`` in the points' units."""
    return np.linalg.norm(points[..., LEFT_EYE_OUTER, :2] - points[..., RIGHT_EYE_OUTER, :2], axis=-1)


def _mesh_to_points(face, width: int, height: int) -> np.ndarray:
    arr = np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float32)
    out = np.empty_like(arr)
    out[:, 0] = arr[:, 0] * width - 0.5
    out[:, 1] = arr[:, 1] * height - 0.5
    out[:, 2] = arr[:, 2] * width
    return out


def _by_size(faces: list[np.ndarray]) -> list[np.ndarray]:
    """Faces sorted by landmark box area, largest first."""
    areas = [float(np.prod(f[:, :2].max(0) - f[:, :2].min(0))) for f in faces]
    return [faces[i] for i in np.argsort(areas)[::-1]]


class LandmarkDetector:
    """MediaPipe Face Mesh with refined landmarks (478 points).

    Args:
        video: tracking mode (``static_image_mode=False``): frames must be given in order.
        max_faces: how many faces MediaPipe looks for (the largest is returned).
        min_confidence: detection (and, in video mode, tracking) confidence.
        detect_side: still images are first searched at most this large (longer side, pixels).
        refine_side: side of the face crop of the second pass (0 disables it).
    """

    def __init__(
        self,
        video: bool = False,
        max_faces: int = 4,
        min_confidence: float = 0.5,
        detect_side: int = 1024,
        refine_side: int = 512,
    ) -> None:
        import mediapipe as mp  # heavy: imported only when a detector is built

        self.video = video
        self.detect_side = detect_side
        self.refine_side = refine_side
        with quiet_native():
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=not video,
                max_num_faces=max_faces,
                refine_landmarks=True,
                min_detection_confidence=min_confidence,
                min_tracking_confidence=min_confidence,
            )
            self._single = None
            if not video and refine_side:
                self._single = mp.solutions.face_mesh.FaceMesh(
                    static_image_mode=True,
                    max_num_faces=1,
                    refine_landmarks=True,
                    min_detection_confidence=min_confidence,
                )
            # the graph opens its calculators in its own threads after construction; one blank frame
            # waits for that, so their start-up warnings land inside this quiet block
            blank = np.zeros((32, 32, 3), np.uint8)
            for mesh in (self._mesh, self._single):
                if mesh is not None:
                    mesh.process(blank)

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        with quiet_native():  # closing the graph flushes its calculators' warnings too
            for mesh in (self._mesh, self._single):
                if mesh is not None:
                    mesh.close()

    def __enter__(self) -> LandmarkDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ detection
    def _run(self, mesh, image: np.ndarray) -> list[np.ndarray]:
        with quiet_native():  # MediaPipe's C++ warnings on the first frames
            result = mesh.process(np.ascontiguousarray(image))
        faces = result.multi_face_landmarks or []
        h, w = image.shape[:2]
        return [_mesh_to_points(f, w, h) for f in faces]

    def detect(self, image: np.ndarray) -> Detection | None:
        """Landmarks of the largest face of an RGB uint8 ``(H, W, 3)`` image (others in ``.others``), or None."""
        if self.video:
            faces = _by_size(self._run(self._mesh, image))
            return Detection(faces[0], len(faces), faces[1:]) if faces else None
        from core.io.image import limit_size

        small, scale = limit_size(image, self.detect_side)
        faces = self._run(self._mesh, small)
        for points in faces:  # back to the original's pixels: corner coordinates (u + 0.5) scale
            points[:, :2] = (points[:, :2] + 0.5) / scale - 0.5
            points[:, 2] /= scale
        if not faces:
            faces = self._search_tiles(image)
        if not faces:
            return None
        faces = _by_size(faces)
        return Detection(self.refine(image, faces[0]), len(faces), faces[1:])

    def _search_tiles(self, image: np.ndarray) -> list[np.ndarray]:
        """Second search for small faces: overlapping square tiles of the original (side half its shorter
        side, within [``TILE_MIN``, ``TILE_MAX``]), each resized to ``TILE_SIDE``; the faces of the first tile that has
        any, in the original's pixels (``(478, 3)`` each). Empty when the image is small already."""
        from core.fit.crop import square_transform, transform_points, warp_image

        h, w = image.shape[:2]
        side = min(TILE_MAX, max(TILE_MIN, min(h, w) // 2))
        if side >= max(h, w):
            return []
        for cx, cy in _tile_centres(w, h, side):
            mat = square_transform(np.array([cx, cy]), float(side), TILE_SIDE)
            faces = self._run(self._mesh, warp_image(image, mat, TILE_SIDE, border="replicate"))
            if faces:
                inv = np.linalg.inv(mat)
                for points in faces:
                    points[:, :2] = transform_points(inv, points[:, :2])
                    points[:, 2] *= inv[0, 0]
                log.debug("small face found by the tile search at (%.0f, %.0f)", cx, cy)
                return faces
        return []

    def refine(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Second still-image pass around first-pass ``points`` (returned unchanged if it fails or is off)."""
        if self._single is None:
            return points
        refined = self._refine(image, points)
        return points if refined is None else refined

    def _refine(self, image: np.ndarray, points: np.ndarray) -> np.ndarray | None:
        """Second pass on a square crop (twice the landmark box) of the original, resized to refine_side."""
        from core.fit.crop import square_transform, transform_points, warp_image

        lo, hi = points[:, :2].min(0), points[:, :2].max(0)
        side = 2.0 * float((hi - lo).max())
        mat = square_transform((lo + hi) / 2.0, side, self.refine_side)
        crop = warp_image(image, mat, self.refine_side, border="replicate")
        faces = self._run(self._single, crop)
        if not faces:
            log.debug("refinement pass found no face; keeping the first pass")
            return None
        out = faces[0].copy()
        inv = np.linalg.inv(mat)
        out[:, :2] = transform_points(inv, faces[0][:, :2])
        out[:, 2] = faces[0][:, 2] * inv[0, 0]
        # the refinement must describe the same face as the first pass
        if np.median(np.linalg.norm(out[:, :2] - points[:, :2], axis=1)) > 0.1 * side:
            log.debug("refinement pass found another face; keeping the first pass")
            return None
        return out


def detect_landmarks(image: np.ndarray, name: str = "<image>", detector: LandmarkDetector | None = None) -> Detection:
    """Landmarks of the largest face in a still image; ``NoFaceError`` naming ``name`` when there is none."""
    own = detector is None
    det = detector or LandmarkDetector(video=False)
    try:
        found = det.detect(image)
    finally:
        if own:
            det.close()
    if found is None:
        raise NoFaceError(f"{name}: no face found (faces down to about {MIN_FACE_PX} px wide are searched)")
    return found
