"""Find, fetch and convert assets (the ICT face model, learned-engine weights).

The repository ships the converted ICT face model in ``weights/ict-facekit/`` (float16 bases,
compressed), so a bare clone works. Search order for ``ict-facekit/ict_face_model.npz``:
1. the repository's ``weights/`` folder (the shipped copy);
2. the folder named by the environment variable ``GDPW_ASSETS``;
3. the user cache (``$XDG_CACHE_HOME/gdpw`` or ``~/.cache/gdpw``).
``python -m core assets download`` fetches the FaceKit from its public GitHub origin and converts it into
the user cache (or ``--dest``), for installs that left ``weights/`` out.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
ICT_RELPATH = Path("ict-facekit") / "ict_face_model.npz"
ICT_ARCHIVE_URL = "https://github.com/ICT-VGL/ICT-FaceKit/archive/refs/heads/master.zip"
DOWNLOAD_HINT = "python -m core assets download"


class AssetNotFoundError(FileNotFoundError):
    """An asset is missing; the message names the places searched and the command that fetches it."""


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gdpw"


def asset_roots() -> list[Path]:
    """Folders searched for assets, in order of preference."""
    roots = [REPO_ROOT / "weights"]
    if os.environ.get("GDPW_ASSETS"):
        roots.append(Path(os.environ["GDPW_ASSETS"]).expanduser())
    roots.append(user_cache_dir())
    return roots


def find_asset(relpath: str | Path, what: str, hint: str = DOWNLOAD_HINT) -> Path:
    """The first existing ``root / relpath`` over ``asset_roots()``; ``AssetNotFoundError`` otherwise."""
    tried = [root / relpath for root in asset_roots()]
    for path in tried:
        if path.is_file():
            return path
    places = "\n  ".join(str(p) for p in tried)
    raise AssetNotFoundError(f"{what} not found. Looked in:\n  {places}\nFetch it with: {hint}")


def samples_dir() -> Path | None:
    """Folder of sample portraits and clips named by ``$GDPW_SAMPLES``; None when unset or absent.

    Samples are for tests, demos and evaluation only; they are never shipped. The test suite and the
    benchmarks point the variable at the development checkout's ``../shared/samples`` themselves.
    """
    env = os.environ.get("GDPW_SAMPLES")
    path = Path(env).expanduser() if env else None
    return path if path is not None and path.is_dir() else None


def find_ict_model(path: str | Path | None = None) -> Path:
    """Path of the converted ICT face model; an explicit ``path`` must exist."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise AssetNotFoundError(
                f"ICT face model file {path} does not exist. Fetch the model with: {DOWNLOAD_HINT}"
            )
        return path
    return find_asset(ICT_RELPATH, "ICT face model (ict-facekit/ict_face_model.npz)")


# ---------------------------------------------------------------------------------------------- OBJ
class ObjMesh:
    """The parts of a Wavefront OBJ the FaceKit uses: positions, uvs, polygons, per-polygon material."""

    def __init__(self, text: str) -> None:
        verts, uvs, polys, poly_uv, poly_mat = [], [], [], [], []
        materials: list[str] = []
        current = -1
        for line in text.splitlines():
            parts = line.split()
            if not parts:
                continue
            tag = parts[0]
            if tag == "v":
                verts.append([float(x) for x in parts[1:4]])
            elif tag == "vt":
                uvs.append([float(x) for x in parts[1:3]])
            elif tag == "usemtl":
                name = parts[1] if len(parts) > 1 else ""
                if name not in materials:
                    materials.append(name)
                current = materials.index(name)
            elif tag == "f":
                corners = [c.split("/") for c in parts[1:]]
                if not 3 <= len(corners) <= 4:
                    raise ValueError(f"OBJ polygon with {len(corners)} corners; only triangles and quads")
                polys.append([int(c[0]) - 1 for c in corners] + [-1] * (4 - len(corners)))
                has_uv = all(len(c) > 1 and c[1] for c in corners)
                poly_uv.append(
                    ([int(c[1]) - 1 for c in corners] if has_uv else [-1] * len(corners)) + [-1] * (4 - len(corners))
                )
                poly_mat.append(current)
        self.vertices = np.asarray(verts, dtype=np.float32).reshape(-1, 3)
        self.uv = np.asarray(uvs, dtype=np.float32).reshape(-1, 2)
        self.quads = np.asarray(polys, dtype=np.int32).reshape(-1, 4)
        self.quads_uv = np.asarray(poly_uv, dtype=np.int32).reshape(-1, 4)
        self.quad_material = np.asarray(poly_mat, dtype=np.int16)
        self.materials = materials


def fan_triangulate(quads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Polygons ``(P, 4)`` (triangles padded with -1) to triangles ``(F, 3)`` and the polygon of each."""
    tris = [quads[:, [0, 1, 2]]]
    owner = [np.arange(len(quads))]
    is_quad = quads[:, 3] >= 0
    tris.append(quads[is_quad][:, [0, 2, 3]])
    owner.append(np.nonzero(is_quad)[0])
    tris_all = np.concatenate(tris)
    owner_all = np.concatenate(owner)
    # keep the two triangles of a polygon next to each other, in polygon order
    order = np.lexsort((np.concatenate([np.zeros(len(quads)), np.ones(is_quad.sum())]), owner_all))
    return tris_all[order].astype(np.int32), owner_all[order].astype(np.int32)


def _read_meshes(files: dict[str, str]) -> tuple[ObjMesh, dict[str, np.ndarray]]:
    """Parse the neutral mesh fully and every other OBJ's positions only."""
    neutral = ObjMesh(files["generic_neutral_mesh"])
    positions = {}
    for name, text in files.items():
        if name == "generic_neutral_mesh":
            continue
        pts = [line.split()[1:4] for line in text.splitlines() if line.startswith("v ")]
        positions[name] = np.asarray(pts, dtype=np.float32).reshape(-1, 3)
    return neutral, positions


def convert_facekit(folder: str | Path, out_path: str | Path, compact: bool = True) -> Path:
    """Convert the FaceKit's ``FaceXModel/`` OBJ files into the project's ``ict_face_model.npz``.

    ``compact`` stores the identity and expression bases as float16 in a compressed archive (about
    17 MB instead of 53 MB; the largest rounding error is 0.01 mm); the template stays float32.

    Identities are the ``identityNNN.obj`` files in order; expressions the names listed in
    ``vertex_indices.json`` ("fitting_expressions") when present, else every other OBJ, sorted.
    Bases are offsets from ``generic_neutral_mesh.obj``.
    """
    folder = Path(folder)
    files = {p.stem: p.read_text() for p in sorted(folder.glob("*.obj"))}
    if "generic_neutral_mesh" not in files:
        raise FileNotFoundError(f"{folder} has no generic_neutral_mesh.obj: is it the FaceXModel folder?")
    indices_path = folder / "vertex_indices.json"
    indices = json.loads(indices_path.read_text()) if indices_path.is_file() else {}
    neutral, positions = _read_meshes(files)
    identity_names = sorted(n for n in positions if re.fullmatch(r"identity\d+", n))
    expression_names = sorted(indices.get("fitting_expressions") or [n for n in positions if n not in identity_names])
    missing = [n for n in expression_names if n not in positions]
    if missing:
        raise FileNotFoundError(f"expression OBJ files missing in {folder}: {missing[:5]}")
    v = neutral.vertices

    def basis(names: Iterable[str]) -> np.ndarray:
        out = []
        for name in names:
            p = positions[name]
            if p.shape != v.shape:
                raise ValueError(f"{name}.obj has {len(p)} vertices; the neutral mesh has {len(v)}")
            out.append(p - v)
        return np.stack(out).astype(np.float32) if out else np.zeros((0, *v.shape), np.float32)

    faces, face_to_quad = fan_triangulate(neutral.quads)
    kept = {k: val for k, val in indices.items() if not k.endswith("_names")}
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".tmp.npz")
    bases_dtype = np.float16 if compact else np.float32
    save = np.savez_compressed if compact else np.savez
    save(
        tmp,
        v_template=v,
        identity_basis=basis(identity_names).astype(bases_dtype),
        identity_names=np.asarray(identity_names),
        expression_basis=basis(expression_names).astype(bases_dtype),
        expression_names=np.asarray(expression_names),
        quads=neutral.quads,
        faces=faces,
        face_to_quad=face_to_quad,
        uv=neutral.uv,
        quads_uv=neutral.quads_uv,
        quad_material=neutral.quad_material,
        materials=np.asarray(neutral.materials),
        vertex_indices_json=np.asarray(json.dumps(kept)),
    )
    os.replace(tmp, out_path)
    log.info(
        "wrote %s (%d vertices, %d identities, %d expressions)",
        out_path,
        len(v),
        len(identity_names),
        len(expression_names),
    )
    return out_path


def download_ict(dest_root: str | Path | None = None, url: str = ICT_ARCHIVE_URL) -> Path:
    """Download the FaceKit archive, convert ``FaceXModel/`` and return the npz path.

    The result lands in ``dest_root / ict-facekit /`` (default: the user cache), with the licence.
    """
    from tqdm import tqdm

    dest = Path(dest_root).expanduser() if dest_root else user_cache_dir()
    target = dest / ICT_RELPATH
    with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 (fixed https URL)
        total = int(resp.headers.get("Content-Length") or 0) or None
        size = f"{total / 1e6:.1f} MB" if total else "size not announced by the server; a few hundred MB"
        log.info("downloading the ICT-FaceKit archive from %s (%s) into %s", url, size, target.parent)
        buf = io.BytesIO()
        with tqdm(total=total, unit="B", unit_scale=True, desc="ICT-FaceKit") as bar:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                buf.write(chunk)
                bar.update(len(chunk))
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(buf) as zf:
        members = [m for m in zf.namelist() if "/FaceXModel/" in m or m.endswith("/LICENSE")]
        if not any(m.endswith("generic_neutral_mesh.obj") for m in members):
            raise RuntimeError(f"{url} does not contain FaceXModel/generic_neutral_mesh.obj")
        for m in members:
            zf.extract(m, tmp)
        model_dir = next(Path(tmp).rglob("FaceXModel"))
        convert_facekit(model_dir, target)
        licence = next(Path(tmp).rglob("LICENSE"), None)
        if licence is not None:
            (target.parent / "LICENSE").write_bytes(licence.read_bytes())
    return target
