"""Mirror vertex map, flip augmentation and the pair dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.face.mirror import mirror_map, model_mirror_map, symmetric_vertices
from core.render import rasterize
from core.train.dataset import PairDataset, StepBatches, color_jitter


@pytest.fixture(scope="module")
def template(ict_model):
    with torch.no_grad():
        return ict_model(ict_model.neutral(1))[0].double().numpy()


def test_mirror_map_is_an_involution_on_the_symmetric_part(template):
    m = mirror_map(template)
    sym = symmetric_vertices(template, m)
    assert sym.mean() > 0.99
    # positions: mirroring twice lands on the same point for every symmetric vertex
    assert np.abs(template[m[m]][sym] - template[sym]).max() < 1e-4
    # indices: exact involution except where a seam duplicates a vertex on one side only
    from scipy.spatial import cKDTree

    tree = cKDTree(template)
    own = np.array([len(g) for g in tree.query_ball_point(template, 1e-4)])
    mirrored = np.array([len(g) for g in tree.query_ball_point(template * [-1, 1, 1], 1e-4)])
    part = sym & (own == mirrored)
    assert part.mean() > 0.99
    assert np.array_equal(m[m][part], np.nonzero(part)[0])
    # the x = 0 midline maps to itself
    mid = sym & (np.abs(template[:, 0]) < 1e-6) & (own == 1)
    assert mid.any() and np.array_equal(m[mid], np.nonzero(mid)[0])


def test_flipped_mesh_rasterises_as_the_flipped_image(ict_model):
    m = ict_model
    p = m.neutral(1)
    p.camera[:] = torch.tensor([1.2 / 14.7, 0.05, 0.12])
    p.head[0] = torch.tensor([25.0, 5.0, 3.0])
    with torch.no_grad():
        v = m.project(m(p), p.camera)
    mirror = torch.from_numpy(model_mirror_map("ict"))
    vf = v[:, mirror] * v.new_tensor([-1.0, 1.0, 1.0])
    a = rasterize(v, m.render_faces, (96, 96)).mask
    b = rasterize(vf, m.render_faces, (96, 96)).mask
    # same coverage up to a few silhouette pixels (the template is 99.7 % symmetric)
    assert (a.flip(-1) != b).float().mean() < 0.01
    assert a.sum() > 500


def test_pair_dataset_is_deterministic_and_flips(synthetic_root):
    mirror = model_mirror_map("ict")
    ds = PairDataset(synthetic_root, size=64, flip=1.0, jitter=0.1, seed=5, mirror=mirror)
    assert len(ds.identities) == 2
    a, b = ds[(3, 0, 1)], ds[(3, 0, 1)]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["src"].shape == (3, 64, 64) and a["v_src"].shape == (26719, 3)
    assert not torch.equal(ds[(3, 1, 1)]["src"], a["src"]) or not torch.equal(ds[(4, 0, 1)]["src"], a["src"])
    noflip = PairDataset(synthetic_root, size=64, flip=0.0, jitter=0.0, seed=5)
    c = noflip[(3, 0, 1)]
    flipped = PairDataset(synthetic_root, size=64, flip=1.0, jitter=0.0, seed=5, mirror=mirror)[(3, 0, 1)]
    assert torch.equal(flipped["src"], c["src"].flip(-1))
    assert torch.allclose(flipped["v_src"][:, 0], -c["v_src"][torch.from_numpy(mirror), 0])
    # 32 px training from 64 px clips: area-resized frames, the same normalised vertices
    small = PairDataset(synthetic_root, size=32, flip=0.0, jitter=0.0, seed=5)[(3, 0, 1)]
    assert small["src"].shape == (3, 32, 32) and torch.equal(small["v_src"], c["v_src"])
    assert list(StepBatches(7, 9, 2, rank=1)) == [[(7, 1, 0), (7, 1, 1)], [(8, 1, 0), (8, 1, 1)]]


def test_colour_jitter_is_shared_by_the_pair():
    x = torch.rand(3, 8, 8)
    pair = color_jitter(torch.stack([x, x]), 1.1, 0.9, 1.05, 0.05)
    assert torch.equal(pair[0], pair[1]) and not torch.allclose(pair[0], x)
    assert torch.allclose(color_jitter(x, 1.0, 1.0, 1.0, 0.0), x, atol=1e-6)
