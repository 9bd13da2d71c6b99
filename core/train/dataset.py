"""Preprocessed clips and the pair dataset of self-reenactment training (spec sections 3.4 and 9.2-9.3).

Storage, one folder per clip (written by ``python -m core preprocess``, see ``core.train.preprocess``)::

    <root>/<relative path of the video without extension>/
        frames/000000.jpg ...    the S x S crops (JPEG quality 95)
        vertices.npy             (T, N, 3) float16 fitted vertices in crop pixels: u, v (pixel centres,
                                 core.coords) and depth (same pixel units, smaller = nearer)
        params.npz               FaceParams fields (T rows), crops (T, 3, 3), detected (T,)
        meta.json                written last: frames, size, fps, face model, vertex count, source video

``vertices.npy`` is memory-mapped, so a sample reads two frames only. The clip's *identity* is the first
component of its relative path when the videos are nested (VoxCeleb's ``id/video/clip``), else the clip;
an identity map (``read_identity_map``: a CSV with ``file`` and ``identity`` columns, a clip matched by its
folder name = the video's stem, e.g. ``configs/samples_identities.csv``) overrides that for flat folders.

Validation hold-out: ``holdout`` names identities; ``split="train"`` never samples them, ``split="val"``
samples only them (``"all"``: everything). The split is by identity, so a held-out person is never trained on.

Geometry (``geometry=True``, for ``geometry_init`` models): pairs come from each clip's precomputed pool
(``core.train.geometry_cache``) and every item also holds the geometry engine's flow and image.

Sampling (spec 9.2) with one difference: a batch element is a pure function of ``(seed, step, rank, i)``:
identity uniformly, then a clip of it, then two distinct frames (source, driving) in random order (the
original sorts them so the source is always the earlier frame; evaluation uses both directions, so we train
both). Exact resume is free: the data order only depends on the step. Ranks draw from different streams
instead of partitioning the identities.

Augmentation (spec 9.3): horizontal flip with probability ``flip`` (flip both images, re-index both meshes
with the mirror map, negate x), and one colour-jitter draw shared by the pair (brightness, contrast and
saturation factors in [1 - j, 1 + j] then a hue rotation of up to +-j turns in YIQ space; the order is fixed,
unlike torchvision's random order).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

__all__ = [
    "CLIP_VERSION",
    "write_clip",
    "list_clips",
    "read_identity_map",
    "Clip",
    "PairDataset",
    "StepBatches",
    "color_jitter",
    "collate",
]

CLIP_VERSION = 1


# ------------------------------------------------------------------------------------------ storage
def write_clip(
    out_dir: str | Path,
    frames: Iterable[np.ndarray],
    vertices_px: np.ndarray | Iterable[np.ndarray],
    params: dict[str, np.ndarray],
    meta: dict[str, Any],
) -> Path:
    """Write one clip atomically: everything goes to a temporary sibling folder that is renamed at the end
    (removed if anything fails or the run is interrupted).

    ``frames``: ``(T, S, S, 3)`` uint8 RGB, or any iterable of such frames (written as they come);
    ``vertices_px``: ``(T, N, 3)`` crop pixels, or an iterable of ``(T_i, N, 3)`` chunks (streamed into the
    file); ``params``: arrays with T rows.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".tmp-{out_dir.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "frames").mkdir(parents=True)
    try:
        count, size = _write_frames(tmp / "frames", frames, out_dir)
        n_vertices = _write_vertices(tmp / "vertices.npy", vertices_px, count)
        np.savez_compressed(tmp / "params.npz", **params)
        meta = dict(meta, version=CLIP_VERSION, frames=count, size=size, num_vertices=n_vertices)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out_dir.exists():  # an incomplete earlier attempt (no meta.json) or an explicit redo
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir


def _write_frames(folder: Path, frames: Iterable[np.ndarray], name: Path) -> tuple[int, int]:
    """JPEG per frame; returns (count, side)."""
    import cv2

    count, size = 0, 0
    for t, frame in enumerate(frames):
        ok = cv2.imwrite(
            str(folder / f"{t:06d}.jpg"), np.ascontiguousarray(frame[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95]
        )
        if not ok:
            raise OSError(f"could not write frame {t} of {name}")
        count, size = t + 1, int(frame.shape[0])
    return count, size


def _write_vertices(path: Path, vertices_px: np.ndarray | Iterable[np.ndarray], count: int) -> int:
    """``vertices.npy`` (float16) from an array or from chunks; returns the vertex count."""
    if isinstance(vertices_px, np.ndarray):
        np.save(path, np.asarray(vertices_px, dtype=np.float16))
        return int(vertices_px.shape[1])
    out, row = None, 0
    for chunk in vertices_px:
        chunk = np.asarray(chunk)
        if out is None:
            out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(count, *chunk.shape[1:]))
        out[row : row + len(chunk)] = chunk
        row += len(chunk)
    if out is None or row != count:
        raise ValueError(f"{path}: {row} vertex rows for {count} frames")
    out.flush()
    return int(out.shape[1])


def list_clips(root: str | Path) -> list[Path]:
    """Complete clip folders (with ``meta.json``) under ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"training data folder {root} does not exist; make it with 'python -m core preprocess VIDEOS_DIR {root}'"
        )
    return sorted(p.parent for p in root.rglob("meta.json") if not p.parent.name.startswith(".tmp-"))


def read_identity_map(path: str | Path) -> dict[str, str]:
    """``{clip name: identity}`` from a CSV with ``file`` and ``identity`` columns (``file`` may be a video path:
    its stem is the clip's folder name)."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"identity map {path} does not exist")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"file", "identity"} <= set(rows[0]):
        raise ValueError(f"identity map {path} needs 'file' and 'identity' columns, has {sorted(rows[0])}")
    return {Path(r["file"]).stem: r["identity"] for r in rows}


@dataclass
class Clip:
    path: Path
    frames: int
    size: int
    identity: str

    def image(self, t: int) -> np.ndarray:
        import cv2

        img = cv2.imread(str(self.path / "frames" / f"{t:06d}.jpg"), cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f"cannot read frame {t} of {self.path}")
        return img[..., ::-1]

    def vertices(self, t: int) -> np.ndarray:
        """``(N, 3)`` float32 normalised x, y (core.coords) and depth in the same units."""
        v = np.load(self.path / "vertices.npy", mmap_mode="r")[t].astype(np.float32)
        out = np.empty_like(v)
        out[:, :2] = (v[:, :2] + 0.5) * (2.0 / self.size) - 1.0
        out[:, 2] = v[:, 2] * (2.0 / self.size)
        return out


# ------------------------------------------------------------------------------------------ augmentation
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def color_jitter(x: torch.Tensor, b: float, c: float, s: float, h: float) -> torch.Tensor:
    """Brightness, contrast, saturation factors and a hue rotation (fraction of a turn) applied to images
    ``(..., 3, H, W)`` in [0, 1]; the same factors for every image given (a source/driving pair)."""
    grey_w = x.new_tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    x = (x * b).clamp(0, 1)
    mean = (x * grey_w).sum(-3, keepdim=True).mean((-2, -1), keepdim=True)
    x = ((x - mean) * c + mean).clamp(0, 1)
    grey = (x * grey_w).sum(-3, keepdim=True)
    x = ((x - grey) * s + grey).clamp(0, 1)
    if h:
        yiq = _YIQ.to(x)
        a = 2.0 * math.pi * h
        rot = x.new_tensor([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
        m = torch.linalg.inv(yiq) @ rot @ yiq
        x = torch.einsum("ij,...jhw->...ihw", m, x).clamp(0, 1)
    return x


# ------------------------------------------------------------------------------------------ dataset
class PairDataset(Dataset):
    """Self-reenactment pairs. Items are addressed by a key ``(step, rank, i)``; ``__getitem__`` returns
    ``src``, ``drv`` ``(3, S, S)`` float in [0, 1] and ``v_src``, ``v_drv`` ``(N, 3)`` normalised vertices.

    ``mirror``: the face model's mirror vertex map (``core.face.mirror``), needed when ``flip > 0``;
    ``identity_map``: clip name -> identity (``read_identity_map``); ``holdout``: held-out identities and
    ``split`` (``"train"``, ``"val"`` or ``"all"``), see the module docstring; ``geometry``: draw pairs from
    the geometry caches and add ``geo_flow (2, S, S)``, ``geo_image (3, S, S)`` and ``t_geometry`` (seconds
    spent reading them, a 0-d tensor) to every item.
    """

    def __init__(
        self,
        root: str | Path,
        size: int = 256,
        flip: float = 0.5,
        jitter: float = 0.1,
        seed: int = 0,
        mirror: np.ndarray | None = None,
        max_clips: int = 0,
        identity_map: dict[str, str] | None = None,
        holdout: Iterable[str] = (),
        split: str = "all",
        geometry: bool = False,
    ) -> None:
        if split not in ("train", "val", "all"):
            raise ValueError(f"split must be 'train', 'val' or 'all', got '{split}'")
        paths = list_clips(root)
        if max_clips:
            paths = paths[:max_clips]
        root = Path(root)
        holdout = set(holdout)
        self.clips: list[Clip] = []
        for p in paths:
            meta = json.loads((p / "meta.json").read_text())
            if meta["frames"] < 2:
                continue
            rel = p.relative_to(root).parts
            ident = (identity_map or {}).get(p.name) or (rel[0] if len(rel) > 1 else str(p))
            if split == "all" or (ident in holdout) == (split == "val"):
                self.clips.append(Clip(p, int(meta["frames"]), int(meta["size"]), ident))
        if not self.clips:
            raise ValueError(f"no usable clips (with >= 2 frames) under {root} for split '{split}'")
        self.geometry = geometry
        self.caches = []
        if geometry:
            from core.train.geometry_cache import GeometryCache

            self.caches = [GeometryCache(c.path) for c in self.clips]
            bad = [c.path.name for c, g in zip(self.clips, self.caches) if g.meta["size"] != size]
            if bad:
                raise ValueError(f"geometry caches of {bad[:3]} are not at the training size {size}; rebuild them")
        self.by_identity: dict[str, list[int]] = {}
        for i, c in enumerate(self.clips):
            self.by_identity.setdefault(c.identity, []).append(i)
        self.identities = sorted(self.by_identity)
        self.size, self.flip, self.jitter, self.seed = size, flip, jitter, seed
        if flip > 0 and mirror is None:
            raise ValueError("flip augmentation needs the mirror vertex map (core.face.mirror.model_mirror_map)")
        self.mirror = None if mirror is None else torch.as_tensor(mirror, dtype=torch.long)

    def __len__(self) -> int:  # nominal: the data is sampled, not enumerated
        return sum(c.frames for c in self.clips)

    def _image(self, clip: Clip, t: int) -> torch.Tensor:
        img = clip.image(t)
        if img.shape[0] != self.size:
            import cv2

            interp = cv2.INTER_AREA if img.shape[0] > self.size else cv2.INTER_LINEAR
            img = cv2.resize(img, (self.size, self.size), interpolation=interp)
        return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255.0

    def __getitem__(self, key: tuple[int, int, int]) -> dict[str, torch.Tensor]:
        step, rank, i = (int(k) for k in key)
        rng = np.random.default_rng([self.seed, step, rank, i])
        ident = self.identities[rng.integers(len(self.identities))]
        index = self.by_identity[ident][rng.integers(len(self.by_identity[ident]))]
        clip = self.clips[index]
        item: dict[str, torch.Tensor] = {}
        if self.geometry:
            cache = self.caches[index]
            k = int(rng.integers(len(cache)))
            a, b = cache.pairs[k]
            t0 = time.perf_counter()
            item["geo_flow"], item["geo_image"] = cache.read(k)
            item["t_geometry"] = torch.tensor(time.perf_counter() - t0)
        else:
            a, b = rng.choice(clip.frames, size=2, replace=False)
        src, drv = self._image(clip, int(a)), self._image(clip, int(b))
        v_src, v_drv = torch.from_numpy(clip.vertices(int(a))), torch.from_numpy(clip.vertices(int(b)))
        flip = rng.random() < self.flip
        j = self.jitter
        factors = rng.uniform(1 - j, 1 + j, size=3), rng.uniform(-j, j)
        if flip:
            src, drv = src.flip(-1), drv.flip(-1)
            sign = v_src.new_tensor([-1.0, 1.0, 1.0])
            v_src, v_drv = v_src[self.mirror] * sign, v_drv[self.mirror] * sign
            if self.geometry:  # the mirrored pair's geometry: the mirrored image and flow, x negated
                item["geo_image"] = item["geo_image"].flip(-1)
                item["geo_flow"] = item["geo_flow"].flip(-1) * item["geo_flow"].new_tensor([-1.0, 1.0]).view(2, 1, 1)
        if j > 0:
            images = [src, drv] + ([item["geo_image"]] if self.geometry else [])
            jittered = color_jitter(torch.stack(images), *factors[0].tolist(), float(factors[1]))
            src, drv = jittered[0], jittered[1]
            if self.geometry:
                item["geo_image"] = jittered[2]
        item.update(src=src.contiguous(), drv=drv.contiguous(), v_src=v_src, v_drv=v_drv)
        return item


class StepBatches(Sampler):
    """Batch sampler yielding the keys ``[(step, rank, i) for i in range(batch)]`` for ``step = start, ...``:
    the batch of a step is the same whatever the number of workers or where the run was resumed."""

    def __init__(self, start: int, stop: int, batch: int, rank: int = 0) -> None:
        self.start, self.stop, self.batch, self.rank = start, stop, batch, rank

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        for step in range(self.start, self.stop):
            yield [(step, self.rank, i) for i in range(self.batch)]

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}
