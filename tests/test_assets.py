import json

import numpy as np
import pytest

from core import assets
from core.assets import AssetNotFoundError, convert_facekit, fan_triangulate, find_ict_model

NEUTRAL = """# tiny FaceKit-like mesh
mtllib ICTFaceModelMaterial.mtl
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
v 2 0 0
vt 0 0
vt 1 0
vt 1 1
vt 0 1
usemtl M_Face
f 1/1 2/2 3/3 4/4
usemtl M_EyeLashes
f 2/2 5/1 3/3
"""


def _offset_obj(dx):
    pts = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [2, 0, 0]], float)
    pts[:, 0] += dx
    return "\n".join(f"v {x} {y} {z}" for x, y, z in pts) + "\nf 1 2 3 4\nf 2 5 3\n"


@pytest.fixture()
def facekit(tmp_path):
    folder = tmp_path / "FaceXModel"
    folder.mkdir()
    (folder / "generic_neutral_mesh.obj").write_text(NEUTRAL)
    (folder / "identity000.obj").write_text(_offset_obj(0.5))
    (folder / "identity001.obj").write_text(_offset_obj(-1.0))
    (folder / "jawOpen.obj").write_text(_offset_obj(0.25))
    (folder / "browDown_L.obj").write_text(_offset_obj(0.125))
    (folder / "cheekRaiser_L.obj").write_text(_offset_obj(9.0))  # not a fitting expression
    (folder / "vertex_indices.json").write_text(
        json.dumps(
            {
                "fitting_expressions": ["jawOpen", "browDown_L"],
                "idx_to_landmark_verts": [0, 2],
                "expression_names": ["dropped"],
            }
        )
    )
    return folder


def test_converter_writes_the_documented_layout(facekit, tmp_path):
    out = convert_facekit(facekit, tmp_path / "assets" / "ict-facekit" / "ict_face_model.npz")
    d = np.load(out)
    assert d["v_template"].shape == (5, 3) and d["v_template"].dtype == np.float32
    assert list(d["identity_names"]) == ["identity000", "identity001"]
    assert list(d["expression_names"]) == ["browDown_L", "jawOpen"]  # sorted, as in the shared asset
    assert np.allclose(d["identity_basis"][1][:, 0], -1.0) and np.allclose(d["identity_basis"][1][:, 1:], 0)
    assert np.allclose(d["expression_basis"][1][:, 0], 0.25)
    assert d["quads"].tolist() == [[0, 1, 2, 3], [1, 4, 2, -1]]
    assert d["faces"].tolist() == [[0, 1, 2], [0, 2, 3], [1, 4, 2]]
    assert d["face_to_quad"].tolist() == [0, 0, 1]
    assert list(d["materials"]) == ["M_Face", "M_EyeLashes"] and d["quad_material"].tolist() == [0, 1]
    assert d["quads_uv"].tolist() == [[0, 1, 2, 3], [1, 0, 2, -1]] and d["uv"].shape == (4, 2)
    indices = json.loads(str(d["vertex_indices_json"]))
    assert indices["idx_to_landmark_verts"] == [0, 2] and "expression_names" not in indices


def test_converter_rejects_wrong_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="generic_neutral_mesh"):
        convert_facekit(tmp_path, tmp_path / "x.npz")


def test_the_repository_ships_a_compact_model():
    """The shipped copy is found first, is at most 20 MB, and its float16 bases match the full-precision
    conversion to 0.01 mm (checked against the shared original when the development checkout has it)."""
    path = assets.REPO_ROOT / "weights" / "ict-facekit" / "ict_face_model.npz"
    assert path.is_file() and path.stat().st_size <= 20 * 2**20
    assert (path.parent / "LICENSE").is_file() and "MIT" in (path.parent / "LICENSE").read_text()
    assert find_ict_model() == path
    original = assets.REPO_ROOT.parent / "shared" / "assets" / "ict-facekit" / "ict_face_model.npz"
    if not original.is_file():
        pytest.skip("the full-precision original is not beside this checkout")
    shipped, full = np.load(path), np.load(original)
    assert sorted(shipped.files) == sorted(full.files)
    for key in ("identity_basis", "expression_basis"):
        assert shipped[key].dtype == np.float16
        assert np.abs(shipped[key].astype(np.float32) - full[key]).max() < 1e-3  # cm
    assert np.array_equal(shipped["v_template"], full["v_template"])
    assert np.array_equal(shipped["faces"], full["faces"])


def test_fan_triangulation_matches_the_shared_asset():
    try:
        path = find_ict_model()
    except AssetNotFoundError as exc:
        pytest.skip(f"ICT face model absent: {exc}")
    d = np.load(path)
    faces, owner = fan_triangulate(d["quads"])
    assert np.array_equal(faces, d["faces"]) and np.array_equal(owner, d["face_to_quad"])


def test_search_order_and_error_message(tmp_path, monkeypatch, facekit):
    monkeypatch.setattr(assets, "REPO_ROOT", tmp_path / "repo")  # a checkout without weights/
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("GDPW_ASSETS", raising=False)
    # a shared/ folder beside the checkout is not a search place any more
    convert_facekit(facekit, tmp_path / "shared" / "assets" / "ict-facekit" / "ict_face_model.npz")
    with pytest.raises(AssetNotFoundError, match="python -m core assets download"):
        find_ict_model()
    cache = tmp_path / "cache" / "gdpw" / "ict-facekit" / "ict_face_model.npz"
    convert_facekit(facekit, cache)
    assert find_ict_model() == cache
    env_root = tmp_path / "env"
    convert_facekit(facekit, env_root / "ict-facekit" / "ict_face_model.npz")
    monkeypatch.setenv("GDPW_ASSETS", str(env_root))
    assert find_ict_model() == env_root / "ict-facekit" / "ict_face_model.npz"  # GDPW_ASSETS before the cache
    shipped = tmp_path / "repo" / "weights" / "ict-facekit" / "ict_face_model.npz"
    convert_facekit(facekit, shipped)
    assert find_ict_model() == shipped  # the repository's own copy comes first
    with pytest.raises(AssetNotFoundError, match="does not exist"):
        find_ict_model(tmp_path / "nope.npz")


def test_download_converts_an_archive_and_says_its_size(facekit, tmp_path, caplog):
    """``assets download`` against a local HTTP server (127.0.0.1) serving a FaceKit-shaped archive."""
    import functools
    import http.server
    import logging
    import threading
    import zipfile

    from core.assets import download_ict

    site = tmp_path / "site"
    site.mkdir()
    with zipfile.ZipFile(site / "master.zip", "w") as zf:
        for f in facekit.iterdir():
            zf.write(f, f"ICT-FaceKit-master/FaceXModel/{f.name}")
        zf.writestr("ICT-FaceKit-master/LICENSE", "MIT License\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with caplog.at_level(logging.INFO, logger="core.assets"):
            path = download_ict(tmp_path / "dest", url=f"http://127.0.0.1:{server.server_port}/master.zip")
    finally:
        server.shutdown()
    assert path == tmp_path / "dest" / "ict-facekit" / "ict_face_model.npz"
    assert list(np.load(path)["expression_names"]) == ["browDown_L", "jawOpen"]
    assert (path.parent / "LICENSE").read_text().startswith("MIT")
    assert "MB" in caplog.text and "downloading the ICT-FaceKit archive" in caplog.text
