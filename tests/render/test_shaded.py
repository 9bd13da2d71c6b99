"""The shaded ICT face: a render whose pose is known exactly, which the fitter reads back."""

import numpy as np
import pytest
import torch

from core.render.shaded import ShadedFace


def test_fitter_reads_the_pose_of_a_shaded_render(ict_model):
    from core.fit import fit_image

    face = ShadedFace.of(ict_model)
    params = ict_model.apply_edits(ict_model.neutral(), {"yaw": 20.0, "jawOpen": 0.3})
    params.camera[0] = torch.tensor([0.075, 0.02, -0.03])
    render = face.render(params, 256)
    assert render.image.shape == (256, 256, 3) and render.image.dtype == np.uint8
    assert (render.face_id >= 0).mean() > 0.25  # the face fills the picture, the rest is background
    lips = render.image[render.face_id >= 0].reshape(-1, 3)
    assert lips.std(0).max() > 10  # painted and shaded, not flat
    fit = fit_image(render.image, model=ict_model, size=256)
    assert float(fit.params.head[0, 0]) == pytest.approx(20.0, abs=3.0)


def test_shaded_face_is_ict_only():
    from types import SimpleNamespace

    with pytest.raises(ValueError, match="ICT"):
        ShadedFace.of(SimpleNamespace(kind="flame"))
