import numpy as np
import pytest
import torch

from core.face import FaceParams


def _params(b=2):
    return FaceParams.zeros(b, 5, 53, (0.06, 0.0, 0.1))


def test_shapes_are_validated_with_clear_messages():
    p = _params()
    with pytest.raises(ValueError, match="gaze must be"):
        FaceParams(p.shape, p.expression, p.head, p.neck, p.jaw, torch.zeros(2, 2), p.camera)
    with pytest.raises(ValueError, match="batch 3"):
        FaceParams(p.shape, p.expression, torch.zeros(3, 3), p.neck, p.jaw, p.gaze, p.camera)
    with pytest.raises(TypeError, match="torch.Tensor"):
        FaceParams(p.shape, p.expression, [0, 0, 0], p.neck, p.jaw, p.gaze, p.camera)


def test_batch_utilities_round_trip(tmp_path):
    p = _params(3)
    p.head[1, 0] = 12.0
    one = p[1]
    assert one.batch_size == 1 and one.head[0, 0] == 12.0
    assert FaceParams.cat([p, one]).batch_size == 4
    assert one.expand(5).head[:, 0].tolist() == [12.0] * 5
    np.savez(tmp_path / "p.npz", **p.to_numpy())
    back = FaceParams.from_dict(np.load(tmp_path / "p.npz"))
    assert torch.equal(back.head, p.head) and torch.equal(back.camera, p.camera)
    c = p.clone()
    c.head[0, 0] = 1.0
    assert p.head[0, 0] == 0.0
