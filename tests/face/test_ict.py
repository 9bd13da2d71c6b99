import math

import pytest
import torch

from core.face import FaceParams
from core.face.params import FIELD_NAMES
from core.face.rotation import euler_to_matrix


def test_neutral_params_give_the_template_exactly(ict_model):
    verts = ict_model(ict_model.neutral(2))
    assert verts.shape == (2, ict_model.n_vertices, 3)
    assert torch.equal(verts[0], ict_model.v_template)
    assert torch.equal(verts[1], ict_model.v_template)


def test_jaw_open_moves_chin_not_forehead(ict_model):
    neutral = ict_model(ict_model.neutral())[0]
    opened = ict_model(ict_model.apply_edits(ict_model.neutral(), {"jawOpen": 1.0}))[0]
    chin = ict_model.vertex_indices["idx_to_landmark_verts"][8]  # landmark 9 of 68: the chin
    forehead = int(torch.argmax(ict_model.v_template[ict_model.regions["face"], 1]))
    assert neutral[chin, 1] - opened[chin, 1] > 1.0  # cm
    assert (opened[forehead] - neutral[forehead]).norm() < 0.05
    # the jaw control drives the same blendshape
    via_jaw = ict_model(ict_model.apply_edits(ict_model.neutral(), {"jaw_open": 1.0}))[0]
    assert torch.allclose(via_jaw, opened)


def _iris_centre(verts, model, side, centre):
    iris = verts[model.regions[f"iris_{side}"]]
    rest = model.v_template[model.regions[f"iris_{side}"]] - centre
    front = (rest[:, 2] / rest.norm(dim=1)) > 0.9  # the pupil side of the iris shell
    return iris[front].mean(0)


@pytest.mark.parametrize("yaw,pitch", [(20.0, 0.0), (-20.0, 0.0), (0.0, 15.0)])
def test_gaze_rotates_iris_about_eyeball_centre(ict_model, yaw, pitch):
    neutral = ict_model.neutral()
    params = ict_model.apply_edits(neutral, {"gaze_yaw": yaw, "gaze_pitch": pitch})
    verts = ict_model(params)[0]
    centres = ict_model.eye_centres(neutral)[0]
    for e, side in enumerate(("left", "right")):
        a = _iris_centre(ict_model.v_template, ict_model, side, centres[e]) - centres[e]
        b = _iris_centre(verts, ict_model, side, centres[e]) - centres[e]
        angle = math.degrees(math.acos(float(a @ b / (a.norm() * b.norm()))))
        assert abs(angle - abs(yaw or pitch)) < 1.0
        if yaw:  # positive yaw looks towards the subject's left (+x)
            assert (b[0] - a[0]).sign() == math.copysign(1, yaw)
        if pitch:  # positive pitch looks up (+y)
            assert b[1] > a[1]
    # nothing outside the eyeballs moves
    assert torch.equal(verts[~ict_model.regions["eyes"]], ict_model.v_template[~ict_model.regions["eyes"]])


def test_head_yaw_is_rigid_on_face_and_spares_neck_base(ict_model):
    params = ict_model.apply_edits(ict_model.neutral(), {"yaw": 30.0})
    verts = ict_model(params)[0]
    rot = euler_to_matrix(torch.tensor([30.0, 0.0, 0.0]))
    pivot = ict_model.head_pivot
    expected = (ict_model.v_template - pivot) @ rot.T + pivot
    face = ict_model.regions["face_narrow"] | ict_model.regions["eyes"]
    assert (verts[face] - expected[face]).abs().max() < 1e-5
    base = ict_model.regions["neck_base"]
    assert base.sum() > 10
    assert (verts[base] - ict_model.v_template[base]).norm(dim=1).max() < 0.2  # 2 mm
    # positive yaw turns the nose towards +x (the subject's left, the image's right)
    nose = ict_model.vertex_indices["idx_to_landmark_verts"][30]
    assert verts[nose, 0] > ict_model.v_template[nose, 0] + 1.0


@pytest.mark.parametrize(
    "edits", [{"yaw": 45.0}, {"pitch": 30.0}, {"roll": 30.0}, {"yaw": 45.0, "pitch": 20.0, "neck_roll": 15.0}]
)
def test_neck_bends_without_tearing(ict_model, edits):
    """The whole rim at the base of the neck stays put, and no neck edge stretches wildly.

    The back of the ICT neck is only ~4 cm tall, so a 45 degree turn must shear it; harmonic weights keep
    the worst edge within 3.5x its rest length (a per-height fade reaches 2x while moving the rim).
    """
    verts = ict_model(ict_model.apply_edits(ict_model.neutral(), edits))[0]
    rim = ict_model.regions["neck_base"]
    assert rim.sum() > 40
    assert (verts[rim] - ict_model.v_template[rim]).norm(dim=1).max() < 0.2
    faces = ict_model.render_faces
    edges = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    rest = (ict_model.v_template[edges[:, 0]] - ict_model.v_template[edges[:, 1]]).norm(dim=1)
    posed = (verts[edges[:, 0]] - verts[edges[:, 1]]).norm(dim=1)
    ok = rest > 1e-4
    assert torch.isfinite(verts).all()
    assert (posed[ok] / rest[ok]).max() < 3.5
    weights = ict_model.head_weights
    assert weights.min() >= 0 and weights.max() <= 1 and ((weights > 0) & (weights < 1)).sum() > 100


def test_pitch_and_roll_signs(ict_model):
    nose = ict_model.vertex_indices["idx_to_landmark_verts"][30]
    top = int(torch.argmax(ict_model.v_template[:, 1]))
    up = ict_model(ict_model.apply_edits(ict_model.neutral(), {"pitch": 20.0}))[0]
    assert up[nose, 1] > ict_model.v_template[nose, 1]
    rolled = ict_model(ict_model.apply_edits(ict_model.neutral(), {"roll": 20.0}))[0]
    assert rolled[top, 0] < ict_model.v_template[top, 0] - 1.0  # towards the subject's right


def test_vertex_subset_matches_full_forward(ict_model):
    params = ict_model.apply_edits(
        ict_model.neutral(2),
        {"yaw": 25, "gaze_yaw": 10, "jawOpen": 0.3, "neck_pitch": 5, "shape003": 1.5, "blink": 0.5},
    )
    ids = torch.tensor([0, 966, 9500, 21460, 22500, 23030, 24000])
    assert torch.allclose(ict_model(params, ids), ict_model(params)[:, ids], atol=1e-5)


def test_gradients_flow_to_every_parameter(ict_model):
    params = ict_model.neutral()
    params = FaceParams(**{k: v.clone().requires_grad_(True) for k, v in vars(params).items()})
    ids = torch.tensor(ict_model.vertex_indices["idx_to_landmark_verts"] + [21460, 23030])
    verts = ict_model(params, ids)
    proj = ict_model.project(verts, params.camera)
    (proj * torch.randn_like(proj)).sum().backward()
    for name in ("shape", "expression", "head", "neck", "jaw", "gaze", "camera"):
        grad = getattr(params, name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_regions_render_subset_and_landmarks(ict_model):
    n = ict_model.n_vertices
    for name in ("face", "head_neck", "eyes", "mouth_interior"):
        assert ict_model.regions[name].shape == (n,) and ict_model.regions[name].any()
    used = torch.zeros(n, dtype=torch.bool)
    used[ict_model.render_faces.flatten()] = True
    for hidden in ("eyelashes", "teeth", "gums_tongue", "lacrimal"):
        assert not used[ict_model.regions[hidden]].any(), hidden
    assert used[ict_model.regions["face"]].all()
    lms = ict_model.landmarks(ict_model(ict_model.neutral()))
    ids = torch.tensor(ict_model.vertex_indices["idx_to_landmark_verts"])
    assert torch.allclose(lms[0], ict_model.v_template[ids])
    assert len(ict_model.expression_names) == 53 and "jawOpen" in ict_model.expression_names


def test_render_exclude_is_configurable(ict_model):
    from core.assets import find_ict_model
    from core.face import load_face_model

    model = load_face_model("ict", find_ict_model(), n_shape=10, render_exclude=())
    assert len(model.render_faces) == len(model.faces) and model.n_shape == 10
    with pytest.raises(ValueError, match="unknown materials"):
        load_face_model("ict", render_exclude=("M_Nope",))


def test_controls_cover_the_editing_sliders(ict_model):
    controls = ict_model.controls()
    for name in (
        "yaw",
        "pitch",
        "roll",
        "neck_yaw",
        "jaw_open",
        "jaw_sideways",
        "gaze_yaw",
        "gaze_pitch",
        "blink",
        "jawOpen",
        "mouthSmile_L",
        "shape000",
    ):
        assert name in controls
        c = controls[name]
        assert c.minimum < c.maximum
    with pytest.raises(KeyError, match="did you mean yaw"):
        ict_model.apply_edits(ict_model.neutral(), {"yawn": 1.0})
    p = ict_model.apply_edits(ict_model.neutral(), {"blink": 0.7, "jaw_sideways": 0.5})
    assert controls["blink"].read(p).item() == pytest.approx(0.7)
    v = ict_model(p)[0]
    chin = ict_model.vertex_indices["idx_to_landmark_verts"][8]
    assert v[chin, 0] > 0.1  # sideways > 0: chin to the subject's left


def _uncached_shaped(model, params, vertex_ids=None):
    """``shaped`` written out without caches: the reference the cached path must equal exactly."""
    b, s = params.batch_size, params.shape.shape[1]
    expr = model._effective_expression(params)
    if vertex_ids is None:
        offsets = params.shape @ model.identity_basis[:s] + expr @ model.expression_basis
        return model.v_template + offsets.view(b, -1, 3)
    cols = (vertex_ids[:, None] * 3 + torch.arange(3)).reshape(-1)
    offsets = params.shape @ model.identity_basis[:s, cols] + expr @ model.expression_basis[:, cols]
    return model.v_template[vertex_ids] + offsets.view(b, -1, 3)


def test_shape_cache_is_keyed_on_values_and_exact(ict_model):
    g = torch.Generator().manual_seed(3)
    params = ict_model.neutral(2)
    params.shape.copy_(torch.randn(params.shape.shape, generator=g))
    params.expression.copy_(0.3 * torch.rand(params.expression.shape, generator=g))
    ids = ict_model.eye_support("right")
    for _ in range(2):  # the second call reads the caches
        assert torch.equal(ict_model.shaped(params), _uncached_shaped(ict_model, params))
        assert torch.equal(ict_model.shaped(params, ids), _uncached_shaped(ict_model, params, ids))
    # the same tensor refilled in place is a new key: values, not identity
    params.shape.mul_(-0.5)
    assert torch.equal(ict_model.shaped(params), _uncached_shaped(ict_model, params))
    # a returned mesh edited in place does not touch the cache
    ict_model.shaped(params).zero_()
    assert torch.equal(ict_model.shaped(params), _uncached_shaped(ict_model, params))


def test_shape_cache_leaves_fitting_gradients_alone(ict_model):
    params = ict_model.neutral()
    params.shape[:, :3] = torch.tensor([0.5, -1.0, 0.2])
    ict_model.shaped(params)  # cached without grad
    shape = params.shape.clone().requires_grad_(True)
    fitting = FaceParams(**{n: shape if n == "shape" else getattr(params, n) for n in FIELD_NAMES})
    ict_model.shaped(fitting).square().sum().backward()
    assert shape.grad is not None and shape.grad.abs().sum() > 0


def test_tensor_cache_keeps_the_latest_entries():
    from core.face.base import TensorCache

    cache, calls = TensorCache(size=2), []

    def compute(v):
        calls.append(v)
        return torch.tensor(v)

    guard = object()
    for v in (1.0, 2.0, 1.0, 3.0, 1.0, 2.0):
        assert float(cache.get(guard, (torch.tensor([v]), None), lambda v=v: compute(v))) == v
    assert calls == [1.0, 2.0, 3.0, 2.0]  # 1 stays (used again), 2 was dropped when 3 came
    assert len(cache) == 2
    cache.get(object(), (torch.tensor([1.0]), None), lambda: compute(9.0))  # another guard: a miss
    assert calls[-1] == 9.0
    cache.clear()
    assert len(cache) == 0
