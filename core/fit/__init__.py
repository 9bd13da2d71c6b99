"""Face fitting: MediaPipe landmarks to face model parameters for a portrait or a clip.

- ``fit_image(image) -> FaceFit``: the paper's square crop of the largest face and the ICT (or FLAME)
  parameters, camera and vertices expressed for that crop.
- ``fit_video(path_or_frames) -> VideoFit``: one identity, per-frame pose, expression and gaze, smoothed.
- ``fit_landmarks(points)``: the fit alone, from landmarks already in crop pixels.

Modules: ``landmarks`` (MediaPipe), ``crop`` (the paper's crop), ``embedding`` (landmarks on the mesh),
``fitter`` (the ICT fitter), ``generic`` (autograd fitter for other models), ``tracking`` (video),
``api`` (images), ``make_embedding`` (the script that made ``data/ict_mediapipe_embedding.npz``).
"""

from core.fit.api import FaceFit, fit_image, fit_landmarks
from core.fit.fitter import FitOptions
from core.fit.landmarks import LandmarkDetector, NoFaceError
from core.fit.tracking import VideoFit, fit_video

__all__ = [
    "FaceFit",
    "VideoFit",
    "FitOptions",
    "LandmarkDetector",
    "NoFaceError",
    "fit_image",
    "fit_landmarks",
    "fit_video",
]
