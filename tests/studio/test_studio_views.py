"""The studio's pictures: flow colour wheel, layers, codes through PCA, landmarks, the 3D mesh."""

from __future__ import annotations

import math

import numpy as np
import torch

from studio import views


def test_flow_wheel_hue_is_direction_and_saturation_magnitude():
    flow = torch.zeros(1, 2, 64, 64)
    flow[0, 0, :, 32:] = 0.25  # right half: 8 px to the right (64 px wide: 2 units)
    rgb, scale = views.flow_wheel(flow, legend=False)
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
    assert (rgb[:, :32] == 255).all()  # still = white
    assert scale == 8.0
    right = rgb[10, 50].astype(int)
    wheel = views.flow_legend(65)
    assert np.abs(wheel[32, 64].astype(int) - right).max() <= 3  # the legend's rim on the right matches
    # opposite directions get clearly different colours
    left = views.flow_colours(np.array([[[-1.0]], [[0.0]]]), 1.0)[0, 0].astype(int)
    assert np.abs(left - right).sum() > 200


def test_legend_is_drawn_in_the_corner():
    rgb, _ = views.flow_wheel(torch.zeros(2, 128, 128), scale_px=4.0)
    assert (rgb[:64, :64] == 255).all()
    assert (rgb[100:124, 100:124] != 255).any()


def test_layers_and_codes():
    img = np.full((32, 32, 3), 128, np.uint8)
    cov = torch.zeros(1, 1, 32, 32)
    cov[..., 8:24, 8:24] = 1
    per = torch.zeros(1, 1, 32, 32)
    per[..., 4:28, 4:28] = 1
    out = views.layers_image(img, cov, per)
    assert out[16, 16, 2] > out[16, 16, 0]  # blue on the mesh
    assert out[5, 16, 0] > out[5, 16, 2]  # orange on the person beyond it
    codes = torch.rand(1, 16, 32, 32)
    rgb = views.codes_pca(codes, cov)
    assert rgb.shape == (32, 32, 3)
    assert (rgb[0, 0] == rgb[1, 1]).all()  # background uniform
    assert rgb[8:24, 8:24].std() > 20  # codes vary


def test_landmarks_image():
    crop = np.zeros((256, 256, 3), np.uint8)
    pts = np.array([[128.0, 128.0, 0.0]])
    out = views.landmarks_image(crop, pts, None, size=512)
    assert out.shape == (512, 512, 3)
    assert out[256, 256, 1] > 200 and out[10, 10].sum() == 0


def test_mesh_view_and_figure(ict_model):
    mesh = views.mesh_view(ict_model)
    assert 10_000 < mesh.n_faces < 40_000
    assert len(mesh.parts) == 3  # skin, iris, eye white
    verts = ict_model(ict_model.neutral())[0].numpy()
    fig = views.mesh_figure(mesh.positions(verts), mesh)
    payload = fig.to_json()
    assert len(payload) < 900_000  # binary arrays keep slider updates light
    trace = fig.data[0]
    assert trace.type == "mesh3d" and len(trace.x) == len(mesh.vertices)
    assert math.isclose(fig.layout.scene.camera.up.y, 1.0)
