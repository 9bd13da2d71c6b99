import numpy as np
import pytest
import torch

from core.engines.geometry import GeometryEngine

S = 128


class DiscSegmenter:
    """A fixed person mask: a disc around the head plus the lower middle (shoulders)."""

    def __call__(self, image):
        yy, xx = np.mgrid[:S, :S]
        head = (xx - S / 2) ** 2 + (yy - S * 0.45) ** 2 < (S * 0.33) ** 2
        body = (yy > S * 0.75) & (np.abs(xx - S / 2) < S * 0.4)
        return (head | body).astype(np.float32)


@pytest.fixture(scope="module")
def setup(ict_model):
    rng = np.random.default_rng(0)
    tex = (rng.random((S // 4, S // 4, 3)) * 255).astype(np.uint8)
    crop = np.ascontiguousarray(np.repeat(np.repeat(tex, 4, 0), 4, 1))
    engine = GeometryEngine(ict_model, segmenter=DiscSegmenter())
    params = ict_model.neutral()
    params.camera[0] = torch.tensor([0.05, 0.0, 0.1])
    return engine, engine.prepare(crop, params), crop, params


def test_source_parameters_reproduce_the_source(setup):
    engine, state, crop, params = setup
    out = engine.render(state, params)
    assert out.images.shape == (1, S, S, 3)
    assert out.flow.abs().max() < 1e-5
    assert np.abs(out.images[0].astype(int) - crop.astype(int)).max() <= 1
    assert out.synthesised.max() == 0


def test_camera_shift_moves_the_face_by_that_many_pixels(setup, ict_model):
    engine, state, crop, params = setup
    target = params.clone()
    target.camera[0, 1] += 6 * 2.0 / S  # 6 px to the right
    out = engine.render(state, target, debug=True)
    cover = out.debug["coverage"][0, 0].numpy() > 0
    inner = cover & np.roll(cover, 3, 1) & np.roll(cover, -3, 1) & np.roll(cover, 3, 0) & np.roll(cover, -3, 0)
    flow_px = out.flow[0, 0].numpy()[inner] * S / 2
    assert np.abs(flow_px + 6).max() < 0.05  # backward flow: read 6 px to the left
    rows, cols = np.nonzero(inner)
    keep = cols >= 6
    moved = out.images[0][rows[keep], cols[keep]].astype(int)
    original = crop[rows[keep], cols[keep] - 6].astype(int)
    assert np.abs(moved - original).mean() < 2


def test_background_far_from_the_head_stays_still(setup, ict_model):
    engine, state, crop, params = setup
    out = engine.render(state, ict_model.apply_edits(params, {"yaw": 20}))
    flow = out.flow[0].abs().sum(0)
    assert flow[:, :4].max() == 0 and flow[:, -4:].max() == 0  # left and right borders: background
    face = out.flow[0, 0, S // 2 - 5 : S // 2 + 5, S // 2 - 5 : S // 2 + 5]
    assert face.abs().mean() * S / 2 > 2  # the face itself moved by pixels


def test_opened_mouth_is_synthesised_dark(setup, ict_model):
    engine, state, crop, params = setup
    out = engine.render(state, ict_model.apply_edits(params, {"jawOpen": 0.9}))
    synth = out.synthesised[0]
    assert synth.max() > 0.9 and (synth > 0.5).sum() > 10
    inside = out.images[0][synth > 0.9].astype(float)
    assert inside.mean() < crop.astype(float).mean()


def test_batch_of_targets_matches_single_renders(setup, ict_model):
    engine, state, crop, params = setup
    targets = [ict_model.apply_edits(params, e) for e in ({"yaw": 10}, {"pitch": -8, "jawOpen": 0.3})]
    from core.face import FaceParams

    batch = engine.render(state, FaceParams.cat(targets))
    for i, t in enumerate(targets):
        single = engine.render(state, t)
        assert np.abs(batch.images[i].astype(int) - single.images[0].astype(int)).max() <= 1


def test_prepare_validates_input(setup, ict_model):
    engine, _, crop, params = setup
    with pytest.raises(ValueError, match="square"):
        engine.prepare(crop[:, :-1], params)
    with pytest.raises(ValueError, match="B = 1"):
        engine.prepare(crop, params.expand(2))
    with pytest.raises(ValueError, match="square mask around the 128-pixel crop"):
        engine.prepare(crop, params, np.ones((S + 3, S + 3), np.float32))
    around = np.zeros((S + 64, S + 64, 3), np.uint8)
    with pytest.raises(ValueError, match="photo around the 128-pixel crop, at least"):
        engine.prepare(crop, params, None, around[8:-8, 8:-8])  # not as far as the engine's margin
    with pytest.raises(ValueError, match="photo around the 128-pixel crop"):
        engine.prepare(crop, params, None, around[..., 0])  # grey
    with pytest.raises(ValueError, match="photo and around must be the same square"):
        engine.prepare(crop, params, np.ones((S + 32, S + 32), np.float32), around)


@pytest.mark.parametrize("edit", [{"yaw": 30}, {"yaw": -30}, {"pitch": 20}, {"roll": 15}])
def test_a_head_turn_changes_nothing_outside_the_person_old_and_new(setup, ict_model, edit):
    """The head moves as one layer over a still background: outside the person's old region (source
    segmentation) and new one (the warped layer) no pixel changes, in the crop or at full resolution."""
    from core.composite import compose_result

    engine, state, crop, params = setup
    out = engine.render(state, ict_model.apply_edits(params, edit), debug=True)
    outside = (state.person[0, 0] == 0) & (out.debug["person_layer"][0, 0] == 0)
    assert outside.sum() > 0.2 * S * S
    change = np.abs(out.images[0].astype(int) - crop.astype(int)).max(-1)
    assert change[outside.numpy()].max() <= 3
    full = compose_result(crop, out, 0, np.eye(3))
    assert np.abs(full.astype(int) - crop.astype(int)).max(-1)[outside.numpy()].max() <= 3


@pytest.mark.parametrize("edit", [{"yaw": 30}, {"yaw": -30}, {"pitch": 20}])
def test_full_resolution_shows_the_crop_composite_where_the_head_layer_ends(setup, ict_model, edit):
    """At full resolution the photo is moved by the flow times the head layer, upsampled: where the layer
    ends over the old person that would be a fraction of the head's motion, drawing the old silhouette again
    as a faint outline. There (the layer's last pixels and the plate beside them) the output is the crop's
    own composite, upsampled: no partly moved photo."""
    import cv2

    from core.composite import compose_result
    from core.engines.masks import dilate, erode

    engine, state, crop, params = setup
    out = engine.render(state, ict_model.apply_edits(params, edit), debug=True)
    layer = out.debug["person_layer"][:1]
    edge = dilate((layer < 0.999).float(), 1) * erode(state.person, 1) * dilate((layer > 0.001).float(), 3)
    assert edge.sum() > 30
    original = np.kron(crop, np.ones((2, 2, 1), np.uint8))  # the photo at twice the crop's resolution
    crop_t = np.array([[0.5, 0.0, -0.25], [0.0, 0.5, -0.25], [0.0, 0.0, 1.0]])
    full = compose_result(original, out, 0, crop_t).astype(float)
    composite = cv2.resize(out.images[0], (2 * S, 2 * S), interpolation=cv2.INTER_LINEAR).astype(float)
    band = np.kron(edge[0, 0].numpy(), np.ones((2, 2))) > 0.5
    assert np.abs(full - composite).max(-1)[band].mean() < 6.0


def test_full_resolution_keeps_the_photo_edge_where_the_head_hardly_moves(setup, ict_model):
    """Only made-up pixels are pasted from the crop for a motion under half a pixel: the layer's edge stays the
    photo's own, sharper one."""
    engine, state, crop, params = setup
    out = engine.render(state, ict_model.apply_edits(params, {"yaw": 0.5}), debug=True)
    assert np.array_equal(out.synthesised, out.debug["synthesised"][:, 0].numpy())
    moved = engine.render(state, ict_model.apply_edits(params, {"yaw": 20.0}), debug=True)
    assert (moved.synthesised > moved.debug["synthesised"][:, 0].numpy()).sum() > 30


def test_flow_goes_on_beyond_the_crop_for_full_resolution(setup, ict_model):
    """The engine's flow is computed on a canvas grown beyond the crop; its middle is the crop's flow, and it
    fades to zero at the grown border, so a photo around the crop is moved without a tear at the crop edge."""
    engine, state, crop, params = setup
    target = params.clone()
    target.camera[0, 2] -= 40 * 2.0 / S  # the head 40 px up: it reaches over the crop's top
    out = engine.render(state, target)
    m = out.margin
    assert m == engine.margin_px(S) > 0 and out.outer_flow.shape[-1] == S + 2 * m
    assert torch.equal(out.outer_flow[..., m : m + S, m : m + S], out.flow)
    assert out.outer_flow[..., 0, :].abs().max() == 0 and out.outer_flow[..., -1].abs().max() == 0
    # just above the crop the flow is still moving the photo (it does not stop dead at the crop's edge)
    above = out.outer_flow[0, 1, m - 3, m + S // 2]
    inside = out.flow[0, 1, 2, S // 2]
    assert inside > 0 and above > 0.3 * inside


def test_edge_distance_measures_to_the_photos_edge():
    from core.engines.geometry import edge_distance

    assert edge_distance(None, 16).shape == (1, 1, 16, 16) and torch.isinf(edge_distance(None, 16)).all()
    assert torch.isinf(edge_distance(np.ones((24, 24), np.float32), 16)).all()
    photo = np.ones((24, 24), np.float32)
    photo[20:] = 0  # the photo ends 16 rows down: the crop's last row (rows 4..19) is its last
    d = edge_distance(photo, 16)[0, 0]
    assert d.shape == (24, 24) and d[20:].max() == 0
    assert torch.allclose(d[19], torch.ones(24)) and torch.allclose(d[10], torch.full((24,), 10.0))


def test_a_raised_chin_leaves_the_photos_edge_still(setup, ict_model):
    """A tight portrait, whose photo ends at the crop's bottom edge: raising the chin moves the neck, but near
    the photo's edge only the inner face keeps the mesh's flow, so the clothes at the edge stay where they
    are instead of rising with the neck (and drawing the photo's repeated last row at full resolution)."""
    engine, _, crop, _ = setup
    params = ict_model.neutral()
    params.camera[0] = torch.tensor([0.08, 0.0, 0.15])  # the neck reaches the crop's bottom
    a = 32
    photo = np.ones((S + 2 * a, S + 2 * a), np.float32)
    photo[a + S :] = 0
    target = ict_model.apply_edits(params, {"pitch": 20})
    told, untold = engine.prepare(crop, params, photo), engine.prepare(crop, params)
    edge, free = engine.render(told, target), engine.render(untold, target)
    px = S / 2.0
    bottom_free, bottom_edge = free.flow[0, :, -1].norm(dim=0).max() * px, edge.flow[0, :, -1].norm(dim=0).max() * px
    assert bottom_free > 5.0 and bottom_edge < 0.1 * bottom_free
    m = edge.margin
    assert edge.outer_flow[0, :, m + S + 1 :].abs().max() == 0  # nothing moves beyond the photo's edge
    # the face the source showed moves as before
    geo = engine.target_geometry(told, target)
    face = (geo.inner * geo.seen)[0, 0] > 0.5
    assert int(face.sum()) > 500
    assert torch.allclose(edge.flow[0][:, face], free.flow[0][:, face], atol=1e-5)
    # a photo that goes on all round is the same as not telling
    everywhere = engine.prepare(crop, params, np.ones_like(photo))
    assert torch.equal(engine.render(everywhere, target).outer_flow, free.outer_flow)


def test_variant_without_completion_shares_the_engine_and_skips_it(setup, ict_model):
    engine, state, crop, params = setup
    light = engine.variant(completion=False, margin=0.0)
    assert light.model is engine.model and light.segmenter is engine.segmenter and engine.completion
    target = ict_model.apply_edits(params, {"yaw": 35})
    full, fast = engine.render(state, target, debug=True), light.render(state, target, debug=True)
    made_up = [(r.debug["mirrored"] + r.debug["membrane"]).sum() for r in (full, fast)]
    assert made_up[0] > 0 and made_up[1] == 0
    assert fast.margin == 0 and fast.outer_flow.shape == fast.flow.shape
    with pytest.raises(ValueError, match="unknown geometry engine option"):
        engine.variant(colour=True)


@pytest.mark.parametrize(
    ("edit", "still_stretched"), [({"yaw": 30}, 0.15), ({"yaw": -30}, 0.15), ({"pitch": -20}, 0.8)]
)
def test_obliquely_seen_scalp_is_not_drawn_as_streaks(setup, ict_model, edit, still_stretched):
    """Scalp and ears the source saw edge-on (the back of the head a turn brings round, the crown a nod
    shows) would stretch their few source pixels over many: there the flow is the smooth extension's, which
    stretches them far less than the mesh would (after a turn nearly all of them no longer over 3 times; the
    crown a 20 degree nod shows, from a source that saw almost none of it, stays mostly over 3 times, less
    than the mesh would stretch it), and the inner face keeps the mesh's flow."""
    from core.coords import pixel_grid
    from core.engines.completion import area_ratio

    engine, state, crop, params = setup
    target = ict_model.apply_edits(params, edit)
    geo = engine.target_geometry(state, target)
    grazing = engine.grazing(geo)[0, 0] > 0.5
    assert grazing.sum() > 20 and not (grazing & (geo.inner[0, 0] > 0.5)).any()
    flow = engine.flow(state, target)[0]
    ratio = area_ratio(pixel_grid((S, S))[None] + flow.permute(0, 2, 3, 1))[0, 0]
    mesh = area_ratio(pixel_grid((S, S))[None] + geo.mesh_flow.permute(0, 2, 3, 1))[0, 0]
    core = grazing & (mesh < 1.0 / 3.0)
    assert ratio[core].median() > 1.3 * mesh[core].median()
    assert (ratio[core] < 1.0 / 3.0).float().mean() < still_stretched
    inner_seen = (geo.inner[0, 0] > 0.5) & (geo.seen[0, 0] > 0.5)
    assert torch.allclose(flow[0][:, inner_seen], geo.mesh_flow[0][:, inner_seen], atol=1e-6)


def test_chin_lift_is_how_far_the_underside_of_the_jaw_turns_to_the_camera(ict_model):
    """For a frontal head the pitch change, signed as the control; none for a turn or a roll. For a head
    turned 20 degrees, a 20 degree nod shows the underside a little less (part of it tilts sideways) and a
    roll turns it a little away."""
    from core.engines.geometry import chin_lift_deg

    rot = ict_model.head_rotation
    for yaw, edit, low, high in (
        (0.0, {"pitch": 20.0}, 19.9, 20.1),
        (0.0, {"pitch": -12.0}, -12.1, -11.9),
        (0.0, {"yaw": 45.0}, -0.1, 0.1),
        (0.0, {"roll": 15.0}, -0.1, 0.1),
        (20.0, {"pitch": 20.0}, 17.0, 19.9),
        (20.0, {"roll": 15.0}, -6.0, -4.0),
    ):
        source = ict_model.apply_edits(ict_model.neutral(), {"yaw": yaw})
        lift = float(chin_lift_deg(rot(source), rot(ict_model.apply_edits(source, edit)))[0])
        assert low < lift < high, (yaw, edit, lift)


def test_relief_offsets_deepen_large_rotations_along_the_source_line_of_sight():
    from core.engines.geometry import RELIEF_RAMP, relief_offsets
    from core.face.rotation import euler_to_matrix

    depth = torch.tensor([[0.0, 5.0, 10.0, -4.0]])  # cm in front of the pivot
    weights = torch.tensor([1.0, 1.0, 1.0, 0.0])  # the last vertex does not follow the head

    def rot(yaw, pitch=0.0, roll=0.0):
        return euler_to_matrix(torch.tensor([[yaw, pitch, roll]]))

    def offsets(source, target):
        return relief_offsets(depth, source, target, weights, gain=0.15)[0]

    # a full turn (past the ramp): each head vertex goes 15 % deeper along the source's line of sight,
    # turned with the head; the vertex that stays put gets it along the view axis (no image motion)
    turned = offsets(rot(0.0), rot(30.0))
    sight = torch.tensor([np.sin(np.pi / 6), 0.0, np.cos(np.pi / 6)], dtype=torch.float32)
    assert torch.allclose(turned[:3], 0.15 * depth[0, :3, None] * sight, atol=1e-5)
    assert torch.allclose(turned[3], torch.tensor([0.0, 0.0, 0.15 * -4.0]), atol=1e-5)
    # the same relative turn from a turned source: the same stretch, along that source's line of sight
    from_turned = offsets(rot(20.0), rot(50.0))
    assert torch.allclose(
        from_turned[:3], (rot(50.0)[0] @ rot(20.0)[0, 2])[None] * 0.15 * depth[0, :3, None], atol=1e-5
    )
    # no change, a small change (reenactment), a roll: nothing; a 20 degree nod: part of the gain
    assert offsets(rot(20.0), rot(20.0)).abs().max() == 0
    assert offsets(rot(0.0), rot(RELIEF_RAMP[0] - 1.0)).abs().max() == 0
    assert offsets(rot(0.0), rot(0.0, 0.0, 30.0))[:, :2].abs().max() < 1e-6
    t = (20.0 - RELIEF_RAMP[0]) / (RELIEF_RAMP[1] - RELIEF_RAMP[0])
    nod = offsets(rot(0.0), rot(0.0, -20.0))
    expected = 0.15 * t * t * (3 - 2 * t) * depth[0, 2] * (rot(0.0, -20.0)[0] @ torch.tensor([0.0, 0.0, 1.0]))
    assert torch.allclose(nod[2], expected, atol=1e-5)


def test_relief_offsets_give_nods_their_own_gain():
    from core.engines.geometry import relief_offsets
    from core.face.rotation import euler_to_matrix

    depth, weights = torch.tensor([[10.0]]), torch.tensor([1.0])

    def size(yaw, pitch):
        target = euler_to_matrix(torch.tensor([[yaw, pitch, 0.0]]))
        return float(relief_offsets(depth, euler_to_matrix(torch.zeros(1, 3)), target, weights, 0.1, 0.3).norm())

    # past the ramp: a turn takes the turn gain, a nod the nod gain, either way round
    assert size(30.0, 0.0) == pytest.approx(1.0, rel=1e-4)
    assert size(0.0, -30.0) == pytest.approx(3.0, rel=1e-4)
    assert size(0.0, 30.0) == pytest.approx(3.0, rel=1e-4)
    # a diagonal turn and nod: in between, by the share of each axis in the rotation
    assert 1.2 < size(25.0, 25.0) < 2.8
    # without a nod gain a nod takes the turn gain
    same = relief_offsets(
        depth, euler_to_matrix(torch.zeros(1, 3)), euler_to_matrix(torch.tensor([[0.0, 30.0, 0.0]])), weights, 0.1
    )
    assert float(same.norm()) == pytest.approx(1.0, rel=1e-4)


def test_large_turns_move_the_face_further_small_ones_as_before(setup, ict_model):
    engine, state, crop, params = setup
    flat = engine.variant(relief=0.0, nod_relief=0.0)
    # the source's own projection never changes
    assert torch.equal(engine.target_projection(state, params), engine.project(params))
    small = ict_model.apply_edits(params, {"yaw": 5})
    assert torch.equal(engine.render(state, small).flow, flat.render(state, small).flow)
    # a 30 degree turn: the nose tip (the point furthest in front of the pivot) moves further by the gain
    large = ict_model.apply_edits(params, {"yaw": 30})
    tip = int(torch.argmax(ict_model(params)[0, :, 2] * ict_model.regions["face_narrow"]))
    shift = engine.target_projection(state, large)[0, tip, 0] - flat.target_projection(state, large)[0, tip, 0]
    depth = float(ict_model(params)[0, tip, 2] - ict_model.head_pivot[2])
    assert shift == pytest.approx(float(params.camera[0, 0]) * engine.relief * depth * 0.5, rel=1e-3)

    # ... and a 30 degree nod by the nod gain, up and down
    for pitch in (-30.0, 30.0):
        nod = ict_model.apply_edits(params, {"pitch": pitch})
        shift = engine.target_projection(state, nod)[0, tip, 1] - flat.target_projection(state, nod)[0, tip, 1]
        assert abs(float(shift)) == pytest.approx(
            float(params.camera[0, 0]) * engine.nod_relief * depth * 0.5, rel=1e-3
        )


def test_hidden_crown_keeps_the_flow_of_the_hair(setup, ict_model):
    """A nod shows the top of the skull, which the source hardly saw. It is under hair, so the flow's
    continuation of the hair is kept there even where it stretches, instead of the membrane (a flat blob
    with an edge) that other hidden skin without a mirror gets."""
    from types import SimpleNamespace

    from core.engines.completion import crown_vertices

    engine, state, crop, params = setup
    crown_v = crown_vertices(ict_model).bool()
    height = ict_model.v_template[:, 1]
    assert 100 < int(crown_v.sum()) < int(ict_model.regions["head_neck"].sum()) // 2
    assert float(height[crown_v].min()) > float(height[ict_model.regions["face_narrow"]].max()) - 2.0
    assert torch.equal(crown_vertices(SimpleNamespace(regions={}, n_vertices=4)), torch.zeros(4))

    # a tight crop, as of a real portrait: the top of the head reaches the crop's top; with grain, so that no
    # row of its blocks repeats the next (as where a crop runs past the photo, below)
    grain = np.random.default_rng(4).integers(-2, 3, crop.shape)
    crop = np.clip(crop.astype(int) + grain, 0, 255).astype(np.uint8)
    tight = params.clone()
    tight.camera[0] = torch.tensor([0.11, 0.0, 0.0])
    state = engine.prepare(crop, tight)
    target = ict_model.apply_edits(tight, {"pitch": -20})
    plain = engine.variant()
    plain.crown = torch.zeros_like(engine.crown)
    kept, patched = engine.render(state, target, debug=True), plain.render(state, target, debug=True)
    crown = engine.target_geometry(state, target).crown[0, 0] > 0.5
    flat = (patched.debug["membrane"][0, 0] > 0.99) & crown
    assert int(flat.sum()) > 200  # without the crown rule the hidden crown gets the membrane ...
    # ... with it, the flow (but for the soft rim of the membrane of the skin next to it)
    assert float(kept.debug["membrane"][0, 0][flat].max()) < 0.5
    assert float(kept.debug["membrane"][0, 0][flat].mean()) < 0.1
    assert float(kept.synthesised[0][flat.numpy()].max()) < 0.5
    # the rest of the membrane is the same
    rest = ~crown
    assert torch.equal(kept.debug["membrane"][0, 0][rest] > 0.99, patched.debug["membrane"][0, 0][rest] > 0.99)
    # where the crop ran past the photo's top (its top rows repeat the photo's edge), the warp would draw
    # streaks: there the crown gets the membrane again
    cut = crop.copy()
    cut[:40] = cut[40]
    cut_state = engine.prepare(cut, tight)
    assert cut_state.photo[0, 0, :40].max() == 0 and cut_state.photo[0, 0, 40:].min() == 1
    cut_result = engine.render(cut_state, target, debug=True)
    from core.coords import pixel_grid

    read_y = pixel_grid((S, S))[..., 1] + engine.inspect(cut_state, target).flow[0, 1]  # normalised source row
    streaky = flat & (read_y < 40 / S * 2 - 1)
    assert int(streaky.sum()) > 20
    assert float((cut_result.debug["membrane"][0, 0][streaky] > 0.99).float().mean()) > 0.9


def test_photo_area_finds_the_bands_a_crop_repeated_past_the_photo():
    from core.engines.geometry import photo_area

    rng = np.random.default_rng(3)
    crop = torch.from_numpy(rng.random((1, 3, 64, 64)).astype(np.float32))
    assert photo_area(crop).min() == 1
    crop[..., :10, :] = crop[..., 10:11, :]  # the photo's top edge is row 10
    crop[..., :, 58:] = crop[..., :, 57:58]  # its right edge column 57
    area = photo_area(crop)[0, 0]
    assert area[:10].max() == 0 and area[:, 58:].max() == 0
    assert area[10:, :58].min() == 1


def ring_inner(k: int, m: int, s: int) -> np.ndarray:
    """``(k, k)`` True on the crop's ``s``-square in the middle of a canvas grown by ``m`` on each side."""
    inner = np.zeros((k, k), bool)
    inner[m : m + s, m : m + s] = True
    return inner


class WideSegmenter:
    """A person mask for the crop or the photo around it (the crop its middle): a head disc wider than the crop,
    crossing its left and right edges, and the shoulders below."""

    def __call__(self, image):
        n = image.shape[0]
        a = (n - S) / 2.0
        yy, xx = np.mgrid[:n, :n] - a
        head = (xx - S / 2) ** 2 + (yy - S * 0.45) ** 2 < (S * 0.55) ** 2
        body = (yy > S * 0.75) & (np.abs(xx - S / 2) < S * 0.7)
        return (head | body).astype(np.float32)


def test_beyond_the_crop_the_background_stays_where_the_head_moves_away(ict_model):
    """Told the photo around the crop, the engine layers the head over the background beyond the crop too: at
    full resolution the background there keeps its place and where the head moved away across the crop's
    edge the background plate shows, continuous with the crop's (no straight seam along the crop's edge, as
    between the crop's smooth plate and the photo moving with the head beyond it). The crop is unchanged."""
    import torch.nn.functional as F

    from core.composite import compose_result
    from core.coords import pixel_grid

    rng = np.random.default_rng(1)
    a = S // 4
    n = S + 2 * a
    tex = (rng.random((n // 4, n // 4, 3)) * 255).astype(np.uint8)
    photo = np.ascontiguousarray(np.repeat(np.repeat(tex, 4, 0), 4, 1))
    crop = np.ascontiguousarray(photo[a : a + S, a : a + S])
    crop_t = np.array([[1.0, 0.0, -a], [0.0, 1.0, -a], [0.0, 0.0, 1.0]])
    engine = GeometryEngine(ict_model, segmenter=WideSegmenter())
    params = ict_model.neutral()
    params.camera[0] = torch.tensor([0.08, 0.0, 0.05])  # the head fills the crop
    inside = np.ones((n, n), np.float32)
    told, untold = engine.prepare(crop, params, inside, photo), engine.prepare(crop, params, inside)
    assert untold.ring is None and told.ring is not None
    target = ict_model.apply_edits(params, {"yaw": 30})
    layered, plain = engine.render(told, target), engine.render(untold, target)
    assert np.array_equal(layered.images, plain.images) and np.array_equal(layered.synthesised, plain.synthesised)
    m = layered.margin
    assert layered.outer_images.shape == (1, S + 2 * m, S + 2 * m, 3) and plain.outer_images is None
    # beyond the crop: background of the source that the moved head layer does not cover
    outer = engine.extend(told, engine.target_geometry(told, target))
    k = S + 2 * m
    grid = pixel_grid((k, k))[None] + (outer * (S / k)).permute(0, 2, 3, 1)
    layer = F.grid_sample(told.ring.person, grid, align_corners=False, padding_mode="border")[0, 0] > 0.001
    ring = np.ones((k, k), bool)
    ring[m : m + S, m : m + S] = False
    background = ring & (told.ring.person[0, 0] == 0).numpy() & ~layer.numpy()
    assert background.sum() > 1000
    moved = outer[0].norm(dim=0).numpy() * (S / 2) > 1.0
    assert (background & moved).sum() > 200  # the flow reaches out there: the head zone crosses the crop's edge
    window = (slice(a - m, a + S + m),) * 2
    for result, most in ((layered, 3), (plain, None)):
        change = np.abs(compose_result(photo, result, 0, crop_t)[window].astype(int) - photo[window]).max(-1)
        if most is not None:
            assert change[background].max() <= most
        else:  # before: the background there moved with the head
            assert (change[background & moved] > 20).mean() > 0.3
    # where the head moved away beyond the crop the background plate shows, which goes on from the crop's own
    # (filled from it and from the background around): no straight seam along the crop's edge
    assert np.array_equal(told.ring.plate[..., m : m + S, m : m + S], told.plate)
    shown = (layered.outer_synthesised[0] > 0.99) & ~ring_inner(k, m, S) & ~layer.numpy()
    assert shown.sum() > 20
    plate = (told.ring.plate[0].permute(1, 2, 0).numpy() * 255.0).round()
    assert np.abs(layered.outer_images[0].astype(float) - plate)[shown].max() <= 1.0
