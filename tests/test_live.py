"""core.live: webcam frames drive a portrait with relative motion."""

from __future__ import annotations

import numpy as np


def test_live_driver_relative_motion_and_no_face(samples, ict_model):
    from core.animator import Animator
    from core.io.video import iter_frames
    from core.live import LiveDriver

    anim = Animator(model=ict_model)
    anim.load_source(samples / "images" / "samples__source_video__image__KristiNoem.png")
    still = anim.render(anim.params_for())
    driver = LiveDriver(anim)
    # it renders with the geometry engine's live variant, on a fork: the caller's animator is untouched
    assert driver.animator is not anim and not driver.animator.engine.completion and anim.engine.completion
    blank = np.full((120, 160, 3), 40, np.uint8)
    first = driver.step(blank)  # no face yet: the portrait as it is
    assert not first.face and np.array_equal(first.image, still)
    frames = list(iter_frames(samples / "videos" / "assets__examples__driving__d20.mp4", 31))
    start = driver.step(frames[0])  # the reference frame: no motion yet
    assert start.face and np.abs(start.image.astype(int) - still).mean() < 2.0
    moved = driver.step(frames[30])  # 1.2 s later the driver's mouth and head have moved
    assert moved.face and np.abs(moved.image.astype(int) - still).mean() > 2.0
    assert set(moved.ms) == {"detect", "fit", "render"}
    held = driver.step(blank)  # the face leaves: the last pose is held
    assert not held.face and np.array_equal(held.image, moved.image)
    driver.reset()
    assert driver.reference is None
    driver.close()
