"""Occlusion-aware completion on a synthetic rendered face: the side the source never showed comes from
its mirror side (the pattern painted on one cheek shows up on the other), and the pieces it is built from
are right."""

import numpy as np
import pytest
import torch

from core.coords import pixel_grid
from core.engines.completion import area_ratio, chin_band, complete_hidden, mirror_partners, overstretched
from core.engines.geometry import GeometryEngine
from core.render.interpolate import interpolate
from core.render.raster import rasterize

S = 128
SKIN = torch.tensor([0.55, 0.50, 0.45])


class MaskSegmenter:
    """A segmenter that returns a given person mask."""

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = mask.astype(np.float32)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.mask


def _painted_cheek(model) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-vertex colours ``(N, 3)``: plain skin, with a light/dark checker of 1.5 cm squares painted on the
    inner face's cheek at x > 2.5 cm; and ``(N,)`` 1.0 on the mirror image of that cheek."""
    with torch.no_grad():
        template = model(model.neutral(1))[0]
    inner = model.regions["face_narrow"].bool()
    painted = inner & (template[:, 0] > 2.5) & (template[:, 1].abs() < 4.0)
    partner, _ = mirror_partners(model)
    other = torch.zeros(len(template), dtype=torch.bool)
    other[partner[painted]] = True
    checker = torch.sign(torch.sin(template[:, 0] * (torch.pi / 1.5)) * torch.sin(template[:, 1] * (torch.pi / 1.5)))
    colours = SKIN + (0.3 * checker * painted)[:, None]
    return colours.clamp(0, 1), other.float()


def _contrast(image: np.ndarray) -> np.ndarray:
    """Per-pixel local contrast ``(H, W)``: distance of the grey level from its 5 x 5 mean."""
    grey = torch.from_numpy(image.astype(np.float32).mean(-1))[None, None] / 255.0
    mean = torch.nn.functional.avg_pool2d(grey, 5, stride=1, padding=2, count_include_pad=False)
    return (grey - mean).abs()[0, 0].numpy()


@pytest.fixture(scope="module")
def scene(ict_model):
    """The source: the painted face rendered turned so that the red cheek faces the camera and the other
    cheek is turned away."""
    colours, other = _painted_cheek(ict_model)
    params = ict_model.apply_edits(ict_model.neutral(), {"yaw": -35.0})
    params.camera[0] = torch.tensor([0.08, 0.0, 0.05])
    probe = GeometryEngine(ict_model, segmenter=MaskSegmenter(np.zeros((S, S))))
    proj = probe.project(params)
    frags = rasterize(proj, probe.faces, (S, S))
    rgb = interpolate(colours[None], frags)
    background = torch.full_like(rgb, 0.3)
    image = torch.where(frags.mask > 0, rgb, background)[0].permute(1, 2, 0)
    crop = (image * 255).round().byte().numpy()
    engine = GeometryEngine(ict_model, segmenter=MaskSegmenter(frags.mask[0, 0].numpy()))
    return engine, engine.prepare(crop, params), crop, params, other


def test_source_shows_one_painted_cheek(scene):
    _, _, crop, _, _ = scene
    assert (_contrast(crop) > 0.06).sum() > 150


def test_turned_away_cheek_is_taken_from_its_mirror_side(scene, ict_model):
    engine, state, crop, params, other = scene
    target = ict_model.apply_edits(params, {"yaw": 35.0})
    out = engine.render(state, target, debug=True)
    geo = engine.target_geometry(state, target)
    on_other = (interpolate(other[None, :, None], geo.frags)[0, 0] > 0.5).numpy()
    mirrored = out.debug["mirrored"][0, 0].numpy() > 0.5
    where = on_other & mirrored
    assert where.sum() > 100  # the unpainted cheek, now facing the camera, was completed from the mirror
    # ... and so shows the pattern painted on the other cheek, which the source never showed on this one
    contrast = _contrast(out.images[0])
    assert contrast[where].mean() > 0.06
    assert out.synthesised[0][where].min() > 0.5  # made up, so full resolution pastes it from the crop
    # the plain warp of those pixels, stretched from the turned-away side, is mostly flat skin
    warped = torch.nn.functional.grid_sample(
        state.crop, engine.flow(state, target)[0].permute(0, 2, 3, 1) + pixel_grid((S, S))[None], align_corners=False
    )
    plain = _contrast((warped[0].permute(1, 2, 0) * 255).numpy())
    assert plain[where].mean() < contrast[where].mean() / 3


def _turned_ict_face(ict_model, source_yaw: float, backdrop: float, inset_px: int = 0):
    """The ICT face at ``source_yaw`` in skin grey on a flat ``backdrop`` grey, its segmentation ``inset_px``
    inside the mesh (a fitted mesh reaching past the real face), prepared: ``(engine, state, target)``, the
    target the source turned to yaw 30 degrees further."""
    from core.engines.masks import erode

    params = ict_model.apply_edits(ict_model.neutral(), {"yaw": source_yaw})
    params.camera[0] = torch.tensor([0.08, 0.0, 0.05])
    probe = GeometryEngine(ict_model, segmenter=MaskSegmenter(np.zeros((S, S))))
    person = erode(rasterize(probe.project(params), probe.faces, (S, S)).mask, inset_px)
    image = torch.where(person > 0, SKIN[None, :, None, None], torch.full((1, 3, S, S), backdrop))
    crop = (image[0].permute(1, 2, 0) * 255).round().byte().numpy()
    engine = GeometryEngine(ict_model, segmenter=MaskSegmenter(person[0, 0].numpy()))
    return engine, engine.prepare(crop, params), ict_model.apply_edits(params, {"yaw": 30.0})


def _mean_grey(engine, state, target, region) -> tuple[float, int]:
    """The mean grey of the pixels ``region(debug layers)`` marks in ``engine``'s render, and how many."""
    out = engine.render(state, target, debug=True)
    mask = region(out.debug)
    return float(torch.from_numpy(out.images[0].astype(np.float32).mean(-1) / 255.0)[mask].mean()), int(mask.sum())


def test_a_mirror_point_the_source_saw_edge_on_is_not_used(ict_model):
    """A source turned 8 degrees sees the cheek beside one ear edge-on, as a sliver next to what lies behind
    the face, and does not show the other cheek's counterpart at all. Turned 30 degrees the other way, that
    counterpart comes into view: its mirror point lies in the sliver, whose few pixels stretched over it
    drew streaks with the background's (in a photo: the ear's, the hair's) colour. The mirror stands in only
    where it saw the surface at least a third as large as the target shows it."""
    engine, state, target = _turned_ict_face(ict_model, -8.0, backdrop=0.05)
    geo = engine.target_geometry(state, target)
    hidden = geo.skin * (1.0 - geo.seen)
    on_face = torch.nn.functional.grid_sample(state.src_cover, geo.mirror_grid, align_corners=False) > 0.99
    edge_on = overstretched(geo.mirror_grid) > 0.5
    slivers = (hidden > 0.5) & on_face & edge_on
    assert int(slivers.sum()) > 20  # hidden pixels whose mirror point the source saw edge-on
    assert float(geo.mirror_seen[slivers].max()) == 0.0
    out = engine.render(state, target, debug=True)
    mirrored = out.debug["mirrored"][0, 0] > 0.5
    assert int(mirrored.sum()) > 300  # the mirror still completes the rest of that cheek ...
    grey = torch.from_numpy(out.images[0].astype(np.float32).mean(-1) / 255.0)
    assert float(grey[mirrored].min()) > 0.2  # ... and nowhere reads the background behind the sliver


def _checker_halves(s: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A flat test scene: ``source (1, 3, s, s)`` a checker of 4 px squares, ``grid (1, s, s, 2)`` its mirror
    map in x, and ``image`` the source with its left half 0.2 darker (the target's side in shadow)."""
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    detail = ((xx // 4 + yy // 4) % 2).float() * 0.2
    source = (0.4 + detail).expand(1, 3, s, s).clone()
    grid = torch.stack([(2 * (s - 1 - xx) + 1) / s - 1, (2 * yy + 1) / s - 1], -1).float()[None]
    image = source.clone()
    image[..., : s // 2] -= 0.2
    return source, grid, image


def test_colour_offset_keeps_the_shading_of_the_target_side():
    """A hidden patch whose mirror is visible takes the mirror's detail with the local colour of its own
    side: a uniformly darker side stays darker."""
    b, s = 1, 64
    source, grid, image = _checker_halves(s)  # the left half is darker...
    hidden = torch.zeros(b, 1, s, s)
    hidden[..., 20:44, 8:24] = 1.0  # ... and has a hole
    seen = 1.0 - hidden
    done = complete_hidden(image * seen, source, hidden, seen, grid, torch.ones(b, 1, s, s))
    patch = done.image[..., 24:40, 12:20]
    assert (patch.mean() - image[..., 24:40, 12:20].mean()).abs() < 0.03  # its side's level, not the mirror's
    assert done.mirrored[..., 24:40, 12:20].min() == 1.0 and done.membrane.max() == 0.0


def test_colour_offset_is_measured_where_the_warp_reads_the_person():
    """Foreshortened skin taken from the mirror side (``poor``) is where the warp is worst: a mesh reaching
    a few pixels past the real face reads the background there, stretched over a wide band. Measured there
    too, the colour offset carried that background's colour onto the mirrored skin (a whitish cheek on
    Obama at yaw +30); measured only where the warp reads the person, the band keeps its side's level."""
    s = 64
    source, grid, image = _checker_halves(s)  # the left side is darker ...
    poor = torch.zeros(1, 1, s, s)
    poor[..., 8:56, 6:18] = 1.0  # ... and its edge, seen edge-on, ...
    outside = torch.zeros(1, 1, s, s)
    outside[..., 8:56, 6:12] = 1.0  # ... reads a white background in its outer half
    image = torch.where(outside > 0, torch.ones_like(image), image)
    none, all_ = torch.zeros(1, 1, s, s), torch.ones(1, 1, s, s)
    done = complete_hidden(image, source, none, all_, grid, all_, poor=poor, measured=1.0 - outside)
    band = done.image[..., 16:48, 7:17]
    expected = (source[..., 16:48, 7:17] - 0.2).mean()
    assert done.mirrored[..., 16:48, 7:17].min() == 1.0
    assert (band.mean() - expected).abs() < 0.03  # its side's level ...
    whitened = complete_hidden(image, source, none, all_, grid, all_, poor=poor).image[..., 16:48, 7:17]
    assert whitened.mean() > expected + 0.2  # ... where measured everywhere it drifted towards the white


def test_a_mesh_reaching_past_the_face_does_not_whiten_the_mirrored_side(ict_model):
    """The fitted mesh reaches 3 px past the person on a white backdrop; the source is turned 15 degrees, so
    the far cheek's edge is foreshortened and a 30 degree turn takes it from the mirror side. The warp of
    that edge reads the backdrop; the mirrored skin keeps the skin's level, where an offset measured on all
    of the person layer (the grown segmentation and the mesh's inner face) carried the white onto it."""
    import dataclasses

    engine, state, target = _turned_ict_face(ict_model, -15.0, backdrop=0.95, inset_px=3)

    def mirrored(debug):
        return debug["mirrored"][0, 0] > 0.5

    skin = float(SKIN.mean())
    level, n = _mean_grey(engine, state, target, mirrored)
    assert n > 500 and abs(level - skin) < 0.05
    assert _mean_grey(engine, dataclasses.replace(state, segment=state.person), target, mirrored)[0] > skin + 0.2


def test_a_mesh_reaching_past_the_face_does_not_fog_the_smeared_cheek(ict_model):
    """A frontal source whose fitted mesh reaches 3 px past the person on a white backdrop, turned 30
    degrees: the cheek's edge it brings round is stretched over 3 times and gets the smooth fill. The warp of
    the mesh's rim reads the backdrop; the fill takes the skin's level, not a whitish fog of the backdrop (as
    when its colours came from all of the warped face skin, the part that reads the backdrop included)."""
    import dataclasses

    engine, state, target = _turned_ict_face(ict_model, 0.0, backdrop=0.95, inset_px=3)

    def filled(debug):
        return (debug["membrane"][0, 0] > 0.5) & (debug["mirrored"][0, 0] < 0.5)

    skin = float(SKIN.mean())
    level, n = _mean_grey(engine, state, target, filled)
    assert n > 300 and abs(level - skin) < 0.04
    assert _mean_grey(engine, dataclasses.replace(state, segment=state.person), target, filled)[0] > skin + 0.1


def test_the_backdrop_a_mesh_reaching_past_the_face_reads_is_not_drawn_inside_the_face(ict_model):
    """The fitted mesh reaches 4 px past the person on a white backdrop, and a 30 degree turn stretches the
    rim it brings round over twice: the warp of that rim reads the backdrop, which showed as a white wedge
    inside the cheek or the jaw (W009, solo, Lei Jun at 25-30 degree turns). Those pixels get the smooth
    fill of the face's skin. Of the 352 white pixels the warp drew on the face's skin, 42 stay: a sliver the
    turn stretches less than twice (a small turn's rim, which keeps the warp)."""
    from core.engines.masks import erode

    engine, state, target = _turned_ict_face(ict_model, 0.0, backdrop=0.95, inset_px=4)
    out = engine.render(state, target, debug=True)
    geo = engine.target_geometry(state, target)
    face = erode(geo.inner * geo.skin, 1)[0, 0] > 0.5  # the inner face's skin, not its own edge
    grey = torch.from_numpy(out.images[0].astype(np.float32).mean(-1) / 255.0)
    white = face & (grey > float(SKIN.mean()) + 0.2)
    assert int(face.sum()) > 4000 and int(white.sum()) < 60, int(white.sum())


def test_smeared_skin_takes_its_colour_from_the_face_not_from_beyond_its_edge():
    """Stretched skin at the face's edge (the side a turn brings round) is filled from the face's own skin:
    the background beside it does not fog into it, as it did when the fill took all of its surroundings."""
    s = 64
    image = torch.full((1, 3, s, s), 0.1)  # background right of x = 40 ...
    image[..., :40] = 0.7  # ... skin left of it
    band = torch.zeros(1, 1, s, s)
    band[..., 8:56, 30:40] = 1.0  # skin at the face's edge, stretched: its warp is streaks
    image = image + band * torch.rand(1, 3, s, s) * 0.5
    skin = torch.zeros(1, 1, s, s)
    skin[..., :30] = 1.0
    none, grid = torch.zeros(1, 1, s, s), torch.zeros(1, s, s, 2)
    done = complete_hidden(image, image, none, none + 1.0, grid, none, smeared=band, skin=skin)
    assert done.membrane[band > 0].min() == 1.0 and done.mirrored.max() == 0.0
    assert (done.image[..., 8:56, 30:40] - 0.7).abs().max() < 0.01
    assert torch.equal(done.image[..., 41:], image[..., 41:])  # past the one-pixel rim nothing else changes
    fog = complete_hidden(image, image, none, none + 1.0, grid, none, smeared=band)
    assert fog.image[..., 16:48, 36:40].mean() < 0.6  # from all its surroundings: the background's colour


def test_area_ratio_of_known_maps():
    s = 32
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    ident = torch.stack([(2 * xx + 1) / s - 1, (2 * yy + 1) / s - 1], -1).float()[None]
    assert torch.allclose(area_ratio(ident)[..., 2:-2, 2:-2], torch.ones(1, 1, s - 4, s - 4), atol=1e-5)
    half = ident * 0.5  # every target pixel reads half as far: a quarter of the source area per pixel
    assert torch.allclose(area_ratio(half)[..., 2:-2, 2:-2], torch.full((1, 1, s - 4, s - 4), 0.25), atol=1e-5)


def test_underside_of_the_jaw():
    """The skin under the jaw: below the mouth, facing down; nothing for a model without a mouth socket."""
    from types import SimpleNamespace

    from core.engines.completion import underside_vertices
    from core.face import load_face_model
    from core.face.base import vertex_normals

    model = load_face_model("ict")
    under = underside_vertices(model).bool()
    rest = model.v_template.double()
    normals = torch.from_numpy(vertex_normals(rest.numpy(), model.faces.numpy()))
    assert 200 < int(under.sum()) < model.n_vertices // 10
    assert float(rest[under, 1].max()) < float(rest[model.regions["mouth_socket"], 1].min())
    assert float(normals[under, 1].max()) < -0.3
    bare = SimpleNamespace(regions={}, n_vertices=5)
    assert torch.equal(underside_vertices(bare), torch.zeros(5))


def test_raised_chin_fills_the_streaks_under_the_jaw(scene, ict_model):
    """Raising the chin shows the underside of the jaw edge-on: its thin bands of pixels stretched more than
    3 times get the smooth fill instead of the warp's streaks (counted as made up, not as stretched)."""
    from core.eval.edits import stretch_fraction

    engine, state, _, params, _ = scene
    frontal = params.clone()
    frontal.head[:] = 0.0
    target = ict_model.apply_edits(frontal, {"pitch": 25.0})
    state = engine.prepare(engine.render(state, frontal).images[0], frontal)
    without = engine.variant()
    without.underside = torch.zeros_like(engine.underside)
    filled, plain = engine.inspect(state, target), without.inspect(state, target)
    geo = engine.target_geometry(state, target)
    under = (geo.underside * geo.seen)[0, 0] > 0.5
    assert int(under.sum()) > 30  # the chin went up: the underside shows
    grid = pixel_grid((S, S))[None] + plain.flow.permute(0, 2, 3, 1)
    streaks = under & (area_ratio(grid)[0, 0] < 1.0 / 3.0) & (plain.synthesised[0, 0] < 0.5)
    assert int(streaks.sum()) > 20  # ... and the plain warp stretches much of it
    assert float((filled.synthesised[0, 0][streaks] > 0.5).float().mean()) > 0.75
    assert stretch_fraction(filled.flow, filled.synthesised)[0] < stretch_fraction(plain.flow, plain.synthesised)[0]


def test_chin_band_takes_the_underside_whole_where_it_was_seen_stretched_on_the_whole():
    """The rows of an underside strip, by fives: one hidden, one a sliver seen unstretched, three seen stretched
    10 times. Where the strip was seen stretched on the whole it is one band, slivers included; where it was
    seen as large as it is shown, none; nor where the warp reads something other than the source's face."""
    s = 40
    underside = torch.zeros(1, 1, s, s)
    underside[..., 10:30, :] = 1.0
    seen = torch.ones(1, 1, s, s)
    seen[..., 12:26:5, :] = 0.0  # hidden rows
    ratio = torch.full((1, 1, s, s), 0.1)
    ratio[..., 13:26:5, :] = 1.0  # sliver rows
    ratio[..., :, 30:] = 1.0  # the right end was seen as large as it is shown
    on_face = torch.ones(1, 1, s, s)
    on_face[..., :, :6] = 0.0  # the left end reads a collar
    band = chin_band(underside, seen, ratio, on_face, radius=2)[0, 0]
    assert band[10:30, 8:26].min() == 1.0  # slivers and hidden rows alike
    assert band[10:30, 33:].max() == 0.0 and band[10:30, :6].max() == 0.0
    assert band[:10].max() == 0.0 and band[30:].max() == 0.0  # only the underside


def test_a_raised_chin_draws_no_lines_across_the_underside_of_the_jaw(samples, ict_model):
    """A 20 degree chin raise shows the underside of the jaw, which the source saw edge-on, as a band of hidden
    strips, strips stretched into streaks and thin slivers of the chin's edge that the warp kept. Filled piece
    by piece, the slivers and the mirror side's jaw edge drew dark lines across it (Rose Leslie: 205 pixels of
    local contrast over 0.03 in the band); it is now filled whole, from the chin above it and the neck below."""
    from core.animator import Animator
    from core.engines.masks import erode
    from core.eval.edits import parse_edit, requested_values

    anim = Animator(engine="geometry", model=ict_model)
    anim.load_source(samples / "images" / "examples__knn_examples__train__rose_leslie__img2.jpg")
    src, engine = anim.source, anim.engine
    target = ict_model.apply_edits(src.params, requested_values(ict_model, src.params, parse_edit("pitch+20")))
    flow, _, _ = engine.flow(src.state, target)
    grid = pixel_grid(flow.shape[-2:])[None] + flow.permute(0, 2, 3, 1)
    band = engine.chin_band(src.state, engine.target_geometry(src.state, target), grid, target)
    inside = erode(band, 1)[0, 0].numpy() > 0.5
    assert inside.sum() > 1000  # the band is there: about 8 by 200 pixels of the 256 crop

    def lines(image: np.ndarray) -> int:
        return int((_contrast(image)[inside] > 0.03).sum())

    assert lines(engine.variant(completion=False).render(src.state, target).images[0]) > 100  # the warp's lines
    assert lines(engine.render(src.state, target).images[0]) < 10
    # a chin lowered as far, or a turn, shows no such band
    for edit in ("pitch-20", "yaw+30"):
        other = ict_model.apply_edits(src.params, requested_values(ict_model, src.params, parse_edit(edit)))
        flow, _, _ = engine.flow(src.state, other)
        grid = pixel_grid(flow.shape[-2:])[None] + flow.permute(0, 2, 3, 1)
        assert engine.chin_band(src.state, engine.target_geometry(src.state, other), grid, other) is None


def test_reflected_grain_reads_the_mirror_image_across_the_nearest_sharp_skin():
    """A smooth fill beside sharp skin reads its grain from that skin as in a mirror held at their border: the
    pixel d from the border reads the one d inside; further than the donor reaches it reads nothing."""
    from core.engines.completion import reflected_grain

    s = 64
    region, donor = torch.zeros(1, 1, s, s), torch.zeros(1, 1, s, s)
    region[..., 40:52] = 1.0  # the fill right of x = 40 ...
    donor[..., 20:40] = 1.0  # ... sharp skin 20 px wide left of it
    flow, found = reflected_grain(region, donor, depth_px=10.0)
    reads = flow[0, 0, 32] * (s / 2.0) + torch.arange(s)  # the column each pixel of row 32 reads
    assert torch.equal(reads[40:49], torch.arange(38.0, 29.0, -1.0))  # x = 40 + j reads 38 - j
    assert torch.all(reads[40:52] >= 20) and torch.all(reads[40:52] < 40)  # always inside the sharp skin
    assert found[0, 0, 10:54, 42:50].min() == 1.0 and found[..., :40].max() == 0.0 and flow[..., :40].abs().max() == 0
    thin = torch.zeros(1, 1, s, s)
    thin[..., 37:40] = 1.0  # sharp skin 3 px wide: the far part of the fill finds none
    _, found_thin = reflected_grain(region, thin, depth_px=10.0)
    assert found_thin[0, 0, 32, 40] == 1.0 and found_thin[0, 0, 32, 47:50].max() == 0.0
