"""The Video tab's choice of face through the studio's HTTP API (gradio_client): a clip with two faces, a
click (x, y) on its first frame, the highlighted choice, and a render that edits only that face."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio_client")

BIG = "videos/samples__source_video__video__KristiNoem.mp4"
SMALL = "videos/samples__source_video__video__Obama_clip1.mp4"
N_FRAMES, LOST = 6, (4, 5)  # the small face is gone from the last two frames
SMALL_BOX = (50, 200, 390, 540)  # rows, columns of the small face's square on the canvas
YELLOW = np.array([255, 220, 0])
NO_KEYS = {"headers": ["control", "time_s", "value", "interpolation"], "data": [["", None, None, "smooth"]]}


def two_face_frames(samples: Path) -> list[np.ndarray]:
    """Frames 256 x 560: a large face on the left, a small one on the right (absent in ``LOST``)."""
    from core.io.video import iter_frames

    y0, y1, x0, x1 = SMALL_BOX
    frames = []
    for t, (a, b) in enumerate(zip(iter_frames(samples / BIG, N_FRAMES), iter_frames(samples / SMALL, N_FRAMES))):
        canvas = np.full((256, 560, 3), 100, np.uint8)
        canvas[:, :256] = a
        if t not in LOST:
            canvas[y0:y1, x0:x1] = np.asarray(Image.fromarray(b).resize((x1 - x0, y1 - y0)))
        frames.append(canvas)
    return frames


@pytest.fixture(scope="module")
def two_faces(samples, tmp_path_factory) -> Path:
    from core.io.video import write_video

    return write_video(tmp_path_factory.mktemp("faces") / "two.mp4", two_face_frames(samples), 10.0)


@pytest.fixture(scope="module")
def one_face(samples, tmp_path_factory) -> Path:
    from core.io.video import iter_frames, write_video

    return write_video(tmp_path_factory.mktemp("face") / "one.mp4", list(iter_frames(samples / BIG, 3)), 10.0)


def _image(value) -> np.ndarray:
    path = value["path"] if isinstance(value, dict) else value
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def _yellow(img: np.ndarray, rows: slice, cols: slice) -> int:
    """Pixels of the highlight colour in a region (the image comes back lossily compressed)."""
    return int((np.abs(img[rows, cols] - YELLOW).max(-1) < 40).sum())


def test_click_on_the_first_frame_picks_the_second_face(studio_server, client, two_faces):
    from gradio_client import handle_file

    y0, y1, x0, x1 = SMALL_BOX
    image, number, status = client.predict(
        handle_file(str(two_faces)), (x0 + x1) / 2, (y0 + y1) / 2, api_name="/video_pick_face"
    )
    assert number == 2 and "Face 2 of 2" in status
    shown = _image(image)
    assert shown.shape == (256, 560, 3)
    right, left = (slice(None), slice(300, None)), (slice(None), slice(0, 270))
    assert _yellow(shown, *right) > 100 and _yellow(shown, *left) < 20  # the chosen box is highlighted
    image, number, status = client.predict(handle_file(str(two_faces)), 120, 128, api_name="/video_pick_face")
    assert number == 1 and "Face 1 of 2" in status
    shown = _image(image)
    assert _yellow(shown, *left) > 100 and _yellow(shown, *right) < 20


def test_render_edits_the_chosen_face_and_passes_frames_without_it(studio_server, client, two_faces):
    from gradio_client import handle_file

    from core.io.video import iter_frames

    tab = studio_server.studio.video_tab
    offsets = [12.0 if n == "yaw" else 0.0 for n in tab.names]
    clip = handle_file(str(two_faces))
    video, _, summary = client.predict(clip, "(none)", None, NO_KEYS, 1, *offsets, 2, api_name="/video_render")
    assert "face 2 of 2" in summary and f"{len(LOST)} without that face passed through" in summary, summary
    path = video["video"] if isinstance(video, dict) else video
    out = np.stack(list(iter_frames(path))).astype(int)
    src = np.stack(list(iter_frames(two_faces))).astype(int)
    assert out.shape == src.shape
    y0, y1, x0, x1 = SMALL_BOX
    diff = np.abs(out - src).mean(-1)  # (T, H, W)
    edited = [t for t in range(N_FRAMES) if t not in LOST]
    assert diff[:, :, :256].mean() < 1.5  # the large face only went through the encoder again
    assert diff[edited, y0 + 10 : y1 - 10, x0 + 10 : x1 - 10].mean() > 3.0  # the small face turned
    assert diff[list(LOST)].mean() < 1.5  # frames without the chosen face pass through


def test_preview_edits_the_chosen_face(studio_server, client, two_faces):
    from gradio_client import handle_file

    tab = studio_server.studio.video_tab
    offsets = [12.0 if n == "yaw" else 0.0 for n in tab.names]
    preview, msg = client.predict(
        handle_file(str(two_faces)), "(none)", None, NO_KEYS, 1, *offsets, 2, api_name="/video_preview"
    )
    img = _image(preview)
    before, after = img[:, :560], img[:, 560:]
    y0, y1, x0, x1 = SMALL_BOX
    assert "face 2 of 2" in msg
    assert np.abs(after[:, :256] - before[:, :256]).mean() < 1.5
    assert np.abs(after[y0:y1, x0:x1] - before[y0:y1, x0:x1]).mean() > 3.0


def test_bad_face_choices_give_a_message(studio_server, client, one_face, two_faces):
    from gradio_client import handle_file

    _, _, status = client.predict(None, 10, 10, api_name="/video_pick_face")
    assert "Choose a video first" in status
    image, number, status = client.predict(handle_file(str(one_face)), 50, 50, api_name="/video_pick_face")
    assert number == 1 and "Only one face" in status
    assert _image(image).shape[:2] == (256, 256)
    tab = studio_server.studio.video_tab
    zeros = [0.0] * len(tab.names)
    _, msg = client.predict(
        handle_file(str(one_face)), "(none)", None, NO_KEYS, 1, *zeros, 2, api_name="/video_preview"
    )
    assert msg.startswith("⚠") and "face 2 asked for" in msg and "1 face(s)" in msg
    _, _, msg = client.predict(
        handle_file(str(two_faces)), "(none)", None, NO_KEYS, 1, *zeros, 3, api_name="/video_render"
    )
    assert msg.startswith("⚠") and "face 3 asked for" in msg and "choose 1 to 2" in msg
    with pytest.raises(Exception, match="less than minimum value 1"):  # the number field's own check
        client.predict(handle_file(str(two_faces)), "(none)", None, NO_KEYS, 1, *zeros, 0, api_name="/video_render")
