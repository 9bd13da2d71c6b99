"""Benchmark of the pure-PyTorch rasteriser on the ICT face + head mesh (prints a table).

Milliseconds per mesh for ``core.render.rasterize`` (and, for reference, the 16-channel neural-code
interpolation on the same fragments) at 256 and 512 px, batch 1 and 16, on CPU and on CUDA when available.
Meshes are placed like a portrait crop (the face ~60 % of the image width) with a few random head rotations.
The target is 25 ms per mesh at 256 px on a 2-core CPU; the ratio column is time / 25 ms.

Usage: python bench/raster.py [--repeats N] [--sizes 256 512] [--batches 1 16] [--threads T]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.coords import project_weak_perspective  # noqa: E402
from core.render import interpolate, rasterize  # noqa: E402

TARGET_MS = 25.0
# Left out of rendering, as in the asset README / core.face's default render subset.
EXCLUDE = ("M_GumsTongue", "M_Teeth", "M_LacrimalFluid", "M_EyeBlend", "M_EyeOcclusion", "M_EyeLashes")
JAW_WIDTH_CM = 14.7  # ICT landmarks 0-16 span about this much
HEAD_PIVOT = torch.tensor([0.0, -4.0, -1.5])  # rotate about the top of the neck (cm)


def load_ict() -> tuple[torch.Tensor, torch.Tensor, str]:
    """Template vertices (N, 3) cm and render faces (F, 3); via core.face when it is there, else the npz."""
    try:
        from core.face import load_face_model

        model = load_face_model("ict")
        verts = model(model.neutral(1))[0].detach()
        return verts.float(), model.render_faces.long(), "core.face.load_face_model('ict')"
    except Exception as err:  # the face package is optional for this benchmark
        reason = f"{type(err).__name__}: {err}"
    root = Path(os.environ.get("GDPW_ASSETS", ROOT.parent / "shared" / "assets"))
    path = root / "ict-facekit" / "ict_face_model.npz"
    data = np.load(path)
    materials = [str(m) for m in data["materials"]]
    tri_mat = data["quad_material"][data["face_to_quad"]]
    keep = ~np.isin(tri_mat, [materials.index(m) for m in EXCLUDE])
    faces = torch.from_numpy(data["faces"][keep].astype(np.int64))
    return torch.from_numpy(data["v_template"].astype(np.float32)), faces, f"{path} ({reason})"


def rotation(yaw: float, pitch: float, roll: float) -> torch.Tensor:
    cy, sy, cp, sp, cr, sr = (f(a) for a in (yaw, pitch, roll) for f in (math.cos, math.sin))
    ry = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = torch.tensor([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = torch.tensor([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry


def posed_meshes(verts: torch.Tensor, batch: int, seed: int = 0, zoom: float = 1.0) -> torch.Tensor:
    """(B, N, 3) projected meshes: random yaw +-30, pitch +-15, roll +-10 degrees, portrait framing
    (``zoom`` > 1 for a close-up with huge triangles)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(batch):
        yaw, pitch, roll = ((torch.rand(3, generator=g) * 2 - 1) * torch.tensor([30.0, 15.0, 10.0])).tolist()
        r = rotation(math.radians(yaw), math.radians(pitch), math.radians(roll))
        out.append((verts - HEAD_PIVOT) @ r.T + HEAD_PIVOT)
    camera = torch.tensor([[zoom * 1.2 / JAW_WIDTH_CM, 0.0, 0.12]]).repeat(batch, 1)  # face ~60 % of the width
    return project_weak_perspective(torch.stack(out), camera)


def timeit(fn, repeats: int, device: torch.device) -> list[float]:
    """Wall times in ms of ``repeats`` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per configuration")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    verts, faces, source = load_ict()
    print(f"mesh: {verts.shape[0]} vertices, {faces.shape[0]} triangles, from {source}")
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, cores {os.cpu_count()}")
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
        print(f"CUDA device: {torch.cuda.get_device_name(0)}")
    codes = torch.rand(verts.shape[0], 16)

    header = (
        f"{'device':6} {'framing':8} {'size':>5} {'batch':>5} {'raster ms/mesh':>15} {'(min)':>7} "
        f"{'ratio':>6} {'interp16 ms/mesh':>17} {'coverage':>8}"
    )
    print(header)
    print("-" * len(header))
    for device in devices:
        f = faces.to(device)
        c = codes.to(device)
        configs = [("portrait", 1.0, size, batch) for size in args.sizes for batch in args.batches]
        configs.append(("close-up", 4.0, max(args.sizes), 1))  # face 4x wider than the image: huge triangles
        for framing, zoom, size, batch in configs:
            v = posed_meshes(verts, batch, zoom=zoom).to(device)
            frag = rasterize(v, f, (size, size))
            repeats = max(3, args.repeats if batch == 1 else args.repeats // 3)
            t_r = timeit(lambda v=v, f=f, size=size: rasterize(v, f, (size, size)), repeats, device)
            t_i = timeit(lambda c=c, frag=frag: interpolate(c, frag), repeats, device)
            med, best = statistics.median(t_r) / batch, min(t_r) / batch
            print(
                f"{device.type:6} {framing:8} {size:>5} {batch:>5} {med:>15.2f} {best:>7.2f} "
                f"{med / TARGET_MS:>6.2f} {statistics.median(t_i) / batch:>17.2f} {frag.mask.mean().item():>8.2f}"
            )
    print(
        f"ratio = median ms per mesh / {TARGET_MS:.0f} ms (the target applies at 256 px); times are medians "
        "of repeated calls after a warm-up, sensitive to other load on the machine."
    )


if __name__ == "__main__":
    main()
