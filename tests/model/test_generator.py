"""PWM generator: parameter counts (spec 6.9), shapes for every variant, grid conventions, SN folding."""

from __future__ import annotations

import pytest
import torch

from core.model import (
    PRESETS,
    VARIANTS,
    Discriminator,
    Generator,
    GeneratorConfig,
    count_parameters,
    fold_spectral_norm,
    has_spectral_norm,
    warp,
)

SPEC_OFFICIAL = {"neural_codes": 141_811_710, "geom_disp": 141_226_766, "both": 141_883_134}
FLAME_TABLE, ICT_TABLE = 5023 * 16, 26719 * 16


def meta_generator(preset: str, variant: str) -> Generator:
    with torch.device("meta"):
        return Generator(GeneratorConfig.from_preset(preset, variant))


@pytest.mark.parametrize("variant", VARIANTS)
def test_official_parameter_count(variant):
    n = count_parameters(meta_generator("official", variant))
    assert abs(n - SPEC_OFFICIAL[variant]) / SPEC_OFFICIAL[variant] < 0.01
    # the only difference is the code table: ICT has 26 719 vertices, FLAME 5 023
    table_diff = (ICT_TABLE - FLAME_TABLE) if variant != "geom_disp" else 0
    assert n == SPEC_OFFICIAL[variant] + table_diff


def test_paper_preset_is_five_levels():
    g = meta_generator("paper", "neural_codes")
    assert sorted(int(k[1:]) for k in g.down_layers) == [1, 2, 4, 8, 16]
    assert 30e6 < count_parameters(g) < 40e6
    assert not g.config.residual_flow and not PRESETS["paper"].get("residual_flow", False)


def test_official_block_breakdown():
    g = meta_generator("official", "neural_codes")
    assert count_parameters(g.up_layers["x32_spade"]) == 87_337_984
    assert count_parameters(g.shortcut_layers["x32"]) == 9_440_256  # dead block kept for parity
    assert [count_parameters(g.up_layers[f"x{s}_flow"]) for s in (32, 16, 8, 4, 2)] == [18434, 9218, 4610, 2306, 1154]
    assert count_parameters(g.up_layers["x1_out"]) == 2308


def test_discriminator_parameter_count_and_shapes():
    d = Discriminator()
    assert count_parameters(d) == 695_201
    feats, logits = d(torch.rand(1, 3, 256, 256))
    assert [tuple(f.shape[1:]) for f in feats] == [(32, 128, 128), (64, 64, 64), (128, 32, 32), (256, 16, 16)]
    assert tuple(logits.shape) == (1, 1, 17, 17)


def test_warp_zero_flow_is_identity():
    x = torch.rand(2, 5, 8, 8)
    assert torch.equal(warp(x, torch.zeros(2, 2, 8, 8)), x)
    # one pixel to the right in normalised units (2 / W): samples the right neighbour
    f = torch.zeros(1, 2, 8, 8)
    f[:, 0] = 2.0 / 8
    assert torch.allclose(warp(x[:1], f)[..., :-1], x[:1, :, :, 1:], atol=1e-6)


@pytest.fixture(scope="module")
def verts(ict_model):
    m = ict_model
    p = m.neutral(2)
    p.camera[:] = torch.tensor([1.2 / 14.7, 0.0, 0.12])
    p.head[1, 0] = 20.0
    with torch.no_grad():
        return m.project(m(p), p.camera)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("size", [64, 128, 256])
def test_shapes(ict_model, verts, variant, size):
    torch.manual_seed(0)
    cfg = GeneratorConfig.from_preset("tiny", variant, ch_base=4, ch_max=16, ch_min=4)
    g = Generator(cfg, ict_model.render_faces)
    b = 2 if size < 256 else 1
    x = torch.rand(b, 3, size, size)
    out = g(x, verts[:1].expand(b, -1, -1), verts[-b:])
    for key in ("y_hat", "rgb", "warped_src"):
        assert out[key].shape == (b, 3, size, size)
    assert out["alpha"].shape == (b, 1, size, size)
    assert out["geom_flow"].shape == (b, 2, size, size)
    assert sorted(out["flows"]) == [1, 2, 4]
    for s, f in out["flows"].items():
        assert f.shape == (b, 2, size // s, size // s)
    assert (out["codes_drv"] is None) == (variant == "geom_disp")
    assert 0 <= float(out["y_hat"].detach().min()) and float(out["y_hat"].detach().max()) <= 1
    out["y_hat"].mean().backward()
    if cfg.uses_codes:
        assert g.embeds.codes.grad is not None and g.embeds.codes.grad.abs().sum() > 0


def test_official_forward_at_64(ict_model, verts):
    """The 6-level preset runs end to end (2 x 2 bottleneck at 64 px)."""
    g = Generator(
        GeneratorConfig.from_preset("official", "both", ch_base=2, ch_max=16, ch_min=2), ict_model.render_faces
    )
    out = g(torch.rand(1, 3, 64, 64), verts[:1], verts[1:])
    assert sorted(out["flows"]) == [1, 2, 4, 8, 16]


def test_residual_flow_starts_at_geometry(ict_model, verts):
    g = Generator(GeneratorConfig.from_preset("tiny", "geom_disp", residual_flow=True), ict_model.render_faces)
    out = g(torch.rand(1, 3, 64, 64), verts[:1], verts[1:])
    for s, f in out["flows"].items():
        assert torch.equal(f, out["mesh_flows"][s])
    assert out["geom_flow"].abs().max() > 0.01


def test_identical_meshes_give_zero_geometric_flow(ict_model, verts):
    g = Generator(GeneratorConfig.from_preset("tiny", "geom_disp"), ict_model.render_faces)
    guid = g.guidance(verts[:1], verts[:1], (64, 64))
    assert float(guid["geom_flow"].abs().max()) == 0.0


def test_fold_spectral_norm_matches_eval(ict_model, verts):
    torch.manual_seed(1)
    g = Generator(GeneratorConfig.from_preset("tiny", "both"), ict_model.render_faces)
    x = torch.rand(2, 3, 64, 64)
    g.train()
    g(x, verts[:1].expand(2, -1, -1), verts)  # a few power iterations and BN statistics
    g.eval()
    with torch.no_grad():
        ref = g(x, verts[:1].expand(2, -1, -1), verts)["y_hat"]
        fold_spectral_norm(g)
        assert not has_spectral_norm(g)
        out = g(x, verts[:1].expand(2, -1, -1), verts)["y_hat"]
    assert torch.allclose(ref, out, atol=1e-5)


def test_encode_decode_cache_matches_forward(ict_model, verts):
    g = Generator(GeneratorConfig.from_preset("tiny", "neural_codes"), ict_model.render_faces).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        full = g(x.expand(2, -1, -1, -1), verts[:1].expand(2, -1, -1), verts)["y_hat"]
        enc = g.encode(x, g.source_codes(verts[:1], (64, 64)))
        cached = g.decode(enc, g.guidance(verts[:1], verts, (64, 64)), x)["y_hat"]
    assert torch.allclose(full, cached, atol=1e-5)


def test_bad_inputs_are_reported(ict_model, verts):
    g = Generator(GeneratorConfig.from_preset("tiny", "geom_disp"), ict_model.render_faces)
    with pytest.raises(ValueError, match="divisible"):
        g(torch.rand(1, 3, 60, 60), verts[:1], verts[:1])
    with pytest.raises(ValueError, match="v_d"):
        g(torch.rand(1, 3, 64, 64), verts[:1], verts[:1, :100])
    with pytest.raises(ValueError, match="variant"):
        GeneratorConfig.from_preset("paper", "nmfc")


# ------------------------------------------------------------------ geometry initialisation
def _geometry(b: int, size: int, seed: int = 0):
    from core.model import GeometryInput

    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    flow = torch.stack([0.08 * torch.sin(3 * yy), 0.05 * torch.cos(2 * xx)])[None].repeat(b, 1, 1, 1)
    return GeometryInput(flow, torch.rand(b, 3, size, size, generator=g))


def test_geometry_init_starts_at_the_geometry_engine(ict_model, verts):
    """Untrained: every level's flow is the geometry flow's pyramid, alpha ~0.0025, the output is the geometry
    image within 1/255; the weights layout is that of the paper's model."""
    torch.manual_seed(0)
    cfg = GeneratorConfig.from_preset("tiny", "neural_codes", geometry_init=True)
    g = Generator(cfg, ict_model.render_faces)
    geo = _geometry(2, 64)
    out = g(torch.rand(2, 3, 64, 64), verts[:1].expand(2, -1, -1), verts, geo)
    from core.render import gaussian_downsample

    for s, f in out["flows"].items():
        assert torch.equal(f, gaussian_downsample(geo.flow, s)), s
        assert torch.equal(out["geometry_flows"][s], f)
    assert float(out["alpha"].detach().max()) < 0.003
    assert float((out["y_hat"].detach() - geo.image).abs().max()) < 1.0 / 255
    # the mesh-only flows stay available next to the complete ones
    assert not torch.equal(out["mesh_flows"][1], out["flows"][1])
    plain = Generator(GeneratorConfig.from_preset("tiny", "neural_codes"), ict_model.render_faces)
    assert {k: v.shape for k, v in plain.state_dict().items()} == {k: v.shape for k, v in g.state_dict().items()}


def test_geometry_init_learns_flows_and_alpha(ict_model, verts):
    """Gradients reach the flow heads and the alpha logit: one Adam step moves both away from the init."""
    torch.manual_seed(0)
    g = Generator(GeneratorConfig.from_preset("tiny", "both", geometry_init=True), ict_model.render_faces)
    geo = _geometry(2, 64)
    x, target = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    opt = torch.optim.Adam(g.parameters(), lr=1e-2)
    out = g(x, verts[:1].expand(2, -1, -1), verts, geo)
    loss = (out["y_hat"] - target).abs().mean() + sum((f - 0.01).abs().mean() for f in out["flows"].values())
    loss.backward()
    assert g.up_layers["x2_flow"].weight.grad.abs().sum() > 0
    assert g.up_layers["x1_out"].weight.grad[3].abs().sum() > 0
    opt.step()
    with torch.no_grad():
        after = g(x, verts[:1].expand(2, -1, -1), verts, geo)
    assert float((after["flows"][1] - out["flows"][1].detach()).abs().max()) > 1e-4
    assert float(after["alpha"].mean()) > float(out["alpha"].detach().mean())


def test_geometry_init_inputs_are_checked(ict_model, verts):
    g = Generator(GeneratorConfig.from_preset("tiny", "neural_codes", geometry_init=True), ict_model.render_faces)
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="needs the geometry engine"):
        g(x, verts[:1], verts[1:])
    with pytest.raises(ValueError, match="geometry flow must be"):
        g(x, verts[:1], verts[1:], _geometry(1, 32))
    with pytest.raises(ValueError, match="leave residual_flow and alpha_blend off"):
        GeneratorConfig.from_preset("tiny", geometry_init=True, residual_flow=True)
    for preset in ("paper", "official"):
        assert not GeneratorConfig.from_preset(preset).geometry_init
