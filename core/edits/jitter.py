"""Temporal jitter of a clip's face: mean frame-to-frame landmark acceleration.

For MediaPipe's 478 landmarks tracked through a clip (``p_t``, pixels), the acceleration at frame t is
``|p_{t+1} - 2 p_t + p_{t-1}|`` per landmark; the jitter is its mean over landmarks and over the frames
whose two neighbours also have a face. A still face scores 0, smooth motion little, a shaking face or
flickering edit much. Comparing an edited clip with its input says whether the edit added jitter.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def landmark_tracks(frames: Iterable[np.ndarray], progress: bool = False) -> np.ndarray:
    """``(T, 478, 2)`` tracked landmark positions in pixels (NaN where no face) of RGB uint8 frames."""
    from tqdm import tqdm

    from core.fit.landmarks import N_LANDMARKS, LandmarkDetector

    rows = []
    with LandmarkDetector(video=True) as det:
        for frame in tqdm(frames, desc="landmarks", unit="frame", disable=not progress):
            d = det.detect(frame)
            rows.append(np.full((N_LANDMARKS, 2), np.nan) if d is None else d.points[:, :2].astype(np.float64))
    return np.stack(rows) if rows else np.zeros((0, N_LANDMARKS, 2))


def landmark_jitter(tracks: np.ndarray) -> float:
    """Mean landmark acceleration (pixels per frame squared) of ``(T, L, 2)`` tracks; NaN if T < 3."""
    if len(tracks) < 3:
        return float("nan")
    acc = np.linalg.norm(tracks[2:] - 2.0 * tracks[1:-1] + tracks[:-2], axis=-1)  # (T-2, L)
    per_frame = acc.mean(-1)
    valid = np.isfinite(per_frame)
    return float(per_frame[valid].mean()) if valid.any() else float("nan")
