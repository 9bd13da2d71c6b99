"""Image input and output: every image enters the pipeline as RGB ``uint8`` ``(H, W, 3)``.

``load_image`` accepts a path, bytes, a PIL image or an array; it applies the EXIF orientation, turns grey,
grey+alpha, palette, 16-bit and RGBA images into RGB (alpha composited on white), and refuses files that
are not images or that are too large with an ``ImageError`` that says what is wrong.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 100_000_000  # beyond this a photo is refused rather than exhausting memory (decompression bomb)
MAX_WORKING_SIDE = 4096  # larger photos are downscaled for fitting; paste-back uses the original
WORKING_PIXELS = 24_000_000  # stills above this are downscaled on loading (GDPW_MAX_WORKING_MP changes it)

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})


def list_images(folder: str | Path, what: str = "photos") -> list[Path]:
    """The image files of ``folder`` (by suffix, sorted); ``ValueError`` when it is not a folder or has none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of {what}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise ValueError(f"{folder}: no {what} ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return paths


ImageInput = str | Path | bytes | np.ndarray | Image.Image


class ImageError(ValueError):
    """The input is not a usable image; the message names the file and the reason."""


def _describe(src: ImageInput) -> str:
    return str(src) if isinstance(src, (str, Path)) else f"<{type(src).__name__}>"


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max() if arr.max() > 255 else 255.0
        img = Image.fromarray((arr / top * 255.0).round().astype(np.uint8))
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def array_to_rgb(arr: np.ndarray, name: str = "<array>") -> np.ndarray:
    """An array image (grey ``(H, W)``, ``(H, W, 1|3|4)``, uint8 or float in [0, 1]) as RGB uint8."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageError(f"{name}: expected an image array (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    if arr.shape[0] < 8 or arr.shape[1] < 8:
        raise ImageError(f"{name}: image of {arr.shape[1]}x{arr.shape[0]} pixels is too small")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating):
            if not np.isfinite(arr).all():
                raise ImageError(f"{name}: image array contains NaN or infinite values")
            scale = 255.0 if arr.max() <= 1.0 else 1.0
            arr = np.clip(arr * scale, 0, 255).round().astype(np.uint8)
        elif arr.dtype == np.uint16:
            arr = (arr // 257).astype(np.uint8)
        else:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.shape[2] == 4:
        alpha = arr[..., 3:].astype(np.float32) / 255.0
        arr = (arr[..., :3] * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    return np.ascontiguousarray(arr)


def load_image(src: ImageInput) -> np.ndarray:
    """Decode ``src`` to RGB uint8 ``(H, W, 3)``; raises ``ImageError`` with a clear message."""
    return _decode(src, None)[0]


def _open(src: ImageInput, name: str) -> Image.Image:
    """The PIL image of a path, bytes or PIL image, header checked (size limit), not yet decoded."""
    if isinstance(src, Image.Image):
        return src
    if isinstance(src, (str, Path)):
        path = Path(src)
        if not path.is_file():
            raise ImageError(f"{name}: no such file")
        if path.stat().st_size == 0:
            raise ImageError(f"{name}: the file is empty")
    try:
        with warnings.catch_warnings():  # MAX_PIXELS below is the limit; PIL's warning is not for the user
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(src) if isinstance(src, bytes) else src)
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{name}: image too large ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{name}: not a readable image file ({type(exc).__name__}: {exc})") from None
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImageError(f"{name}: {w}x{h} pixels is more than the {MAX_PIXELS // 1_000_000} megapixels accepted")
    return img


def _decode(src: ImageInput, max_pixels: int | None) -> tuple[np.ndarray, tuple[int, int]]:
    """RGB uint8 image and the original ``(W, H)``; above ``max_pixels`` a JPEG is decoded at a reduced
    scale and 8-bit images are reduced before they become arrays (memory stays near the limit)."""
    name = _describe(src)
    if isinstance(src, np.ndarray):
        arr = array_to_rgb(src, name)
        return arr, (arr.shape[1], arr.shape[0])
    img = _open(src, name)
    w, h = img.size
    big = max_pixels is not None and w * h > max_pixels
    try:
        if big and img.format == "JPEG":
            scale = (max_pixels / (w * h)) ** 0.5
            img.draft("RGB", (int(w * scale) + 1, int(h * scale) + 1))
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{name}: not a readable image file ({type(exc).__name__}: {exc})") from None
    if img.size[0] < 8 or img.size[1] < 8:
        raise ImageError(f"{name}: image of {img.size[0]}x{img.size[1]} pixels is too small")
    if big and img.mode in ("RGB", "L", "RGBA", "LA") and img.size[0] * img.size[1] > max_pixels:
        scale = (max_pixels / (img.size[0] * img.size[1])) ** 0.5
        img = img.resize(
            (max(8, int(img.size[0] * scale)), max(8, int(img.size[1] * scale))),
            Image.Resampling.LANCZOS,
            reducing_gap=3.0,
        )
    return _to_rgb_array(img), (w, h)


def working_pixels() -> int:
    """The working-resolution limit for stills, in pixels (``$GDPW_MAX_WORKING_MP`` megapixels, default 24)."""
    raw = os.environ.get("GDPW_MAX_WORKING_MP")
    if raw is None:
        return WORKING_PIXELS
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"GDPW_MAX_WORKING_MP must be a number of megapixels, got {raw!r}") from None
    if not 0.1 <= value <= MAX_PIXELS / 1e6:
        raise ValueError(f"GDPW_MAX_WORKING_MP must be in [0.1, {MAX_PIXELS // 1_000_000}], got {raw}")
    return int(value * 1_000_000)


def load_working_image(src: ImageInput, max_pixels: int | None = None) -> tuple[np.ndarray, str]:
    """``load_image`` then, above ``max_pixels`` (default ``working_pixels()``), a downscale to fit it.

    Returns the RGB uint8 image ``(H', W', 3)`` and a note for the user ("" when nothing changed): the fit,
    the edits and the paste-back all work at the reduced size, so memory per photo is bounded.
    """
    limit = working_pixels() if max_pixels is None else max_pixels
    image, (w0, h0) = _decode(src, limit)
    h, w = image.shape[:2]
    if h * w > limit:  # arrays and images of other modes: reduced here
        scale = (limit / (h * w)) ** 0.5
        size = (max(8, int(w * scale)), max(8, int(h * scale)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0))
    if image.shape[0] * image.shape[1] >= w0 * h0:
        return image, ""
    note = (
        f"The {w0}x{h0} photo was reduced to {image.shape[1]}x{image.shape[0]} pixels (the working limit "
        f"is {limit / 1e6:g} megapixels)."
    )
    log.info("%s: %s", _describe(src), note)
    return image, note


def save_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an RGB uint8 image atomically (a temporary file beside it, renamed); the format follows the
    suffix (png, jpg, webp)."""
    from core.io.atomic import atomic_path

    path = Path(path)
    options = {"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg", ".webp") else {}
    rgb = array_to_rgb(image, str(path))
    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format=_format(path), **options)
    return path


def _format(path: Path) -> str:
    """PIL's format name for the suffix of ``path``; ``ImageError`` for an unknown one."""
    ext = path.suffix.lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None:
        raise ImageError(f"{path}: unknown image type '{ext}'; use .png, .jpg or .webp")
    return fmt


def limit_size(image: np.ndarray, max_side: int = MAX_WORKING_SIDE) -> tuple[np.ndarray, float]:
    """Downscale so that the longer side is at most ``max_side``; returns the image and the scale used."""
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale == 1.0:
        return image, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS)), scale
