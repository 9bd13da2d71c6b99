"""One flow-colour convention: the studio's colour wheel and the training logs agree."""

import numpy as np
import torch

from core.render.flowviz import flow_colours, flow_to_rgb


def test_training_logs_and_studio_show_the_same_colours():
    flow = torch.randn(2, 2, 8, 9)
    scale = float(flow.norm(dim=1).max())
    logged = (flow_to_rgb(flow).permute(0, 2, 3, 1).numpy() * 255.0 + 0.5).astype(np.uint8)
    shown = np.stack([flow_colours(f.numpy(), scale) for f in flow])
    assert np.abs(logged.astype(int) - shown.astype(int)).max() <= 1


def test_hue_is_the_direction_and_white_is_still():
    still = flow_colours(np.zeros((2, 1, 1)), 1.0)[0, 0]
    assert still.tolist() == [255, 255, 255]
    right = flow_colours(np.array([[[1.0]], [[0.0]]]), 1.0)[0, 0].astype(int)
    left = flow_colours(np.array([[[-1.0]], [[0.0]]]), 1.0)[0, 0].astype(int)
    assert np.abs(right - left).sum() > 200  # opposite directions, far-apart hues
    half = flow_colours(np.array([[[0.5]], [[0.0]]]), 1.0)[0, 0].astype(int)
    assert (half >= right).all() and (half > right).any()  # half the magnitude: paler
