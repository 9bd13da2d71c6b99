"""Tracked video edits end to end on a short generated clip: size, frame count, fps and audio kept;
face-less frames passed through; the edit moves the face and nothing far from it; CLI validation and
folders of photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from media_helpers import ffmpeg  # tests/media_helpers.py

CLIP = "videos/samples__source_video__video__KristiNoem.mp4"
N_FRAMES, FACELESS, FPS = 9, (4, 5), 15.0


def _frames(samples) -> list[np.ndarray]:
    """9 frames 256 x 320 (the 256 px clip on a grey canvas); frames 4 and 5 have no face."""
    from core.io.video import iter_frames

    out = []
    for t, f in enumerate(iter_frames(samples / CLIP, N_FRAMES)):
        canvas = np.full((256, 320, 3), 128, np.uint8)
        if t not in FACELESS:
            canvas[:, :256] = f
        out.append(canvas)
    return out


@pytest.fixture(scope="module")
def clip(samples, tmp_path_factory) -> Path:
    """The frames as an mp4 with a sine audio track (1 s: longer than the 0.6 s of video)."""

    from core.io.video import write_video

    tmp = tmp_path_factory.mktemp("clip")
    silent = write_video(tmp / "silent.mp4", _frames(samples), FPS)
    path = tmp / "clip.mp4"
    ffmpeg(
        "-i",
        str(silent),
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=1",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        str(path),
    )
    return path


@pytest.fixture(scope="module")
def edited(clip, ict_model, tmp_path_factory):
    from core.animator import Animator

    anim = Animator(model=ict_model)
    out = tmp_path_factory.mktemp("edited") / "out.mp4"
    result = anim.edit_video(clip, {"yaw": 12, "smile": 0.5}, out=out, progress=False)
    return result


def test_output_keeps_size_frames_fps_and_audio(edited, clip):
    from core.io.video import iter_frames, probe_video

    info = probe_video(edited.out)
    assert info.size == (256, 320) and info.fps == pytest.approx(FPS) and info.has_audio
    assert len(list(iter_frames(edited.out))) == N_FRAMES
    s = edited.summary()
    assert s["frames"] == N_FRAMES and s["faceless_frames"] == len(FACELESS) and s["audio"]
    assert s["controls"] == ["yaw", "smile"]


def test_the_face_moves_and_the_rest_stays(edited, clip):
    from core.io.video import iter_frames

    src = np.stack(list(iter_frames(clip))).astype(np.float32)
    out = np.stack(list(iter_frames(edited.out))).astype(np.float32)
    face = [t for t in range(N_FRAMES) if t not in FACELESS]
    change = np.abs(out - src).mean(-1)  # (T, H, W)
    assert change[face][:, 60:200, 60:200].mean() > 4.0  # the head turned
    assert change[:, :, 290:].max() < 12 and change[:, :, 290:].mean() < 1.0  # far right: untouched (codec noise)
    for t in FACELESS:
        assert change[t].mean() < 1.0  # passed through (up to re-encoding)


def test_faceless_frames_are_passed_through_exactly(ict_model):
    from core.edits.video import FrameEditor

    class Fit:  # the part of a VideoFit the editor reads: frame 1 had no face
        detected = np.array([True, False])
        params = ict_model.neutral(2)
        crops = np.stack([np.eye(3)] * 2)

        def __len__(self):
            return 2

    frame = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    editor = FrameEditor(engine=None, fit=Fit(), targets=ict_model.neutral(2))
    assert editor(1, frame) is frame and editor.faceless == 1
    assert editor(5, frame) is frame and editor.faceless == 2  # beyond the fitted frames


def test_cli_refuses_bad_keys_and_writes_nothing(clip, tmp_path, capsys):
    from core.cli import main

    out = tmp_path / "never.mp4"
    keys = tmp_path / "keys.json"
    for text, words in (
        ('{"smile": [[1, 0.2], [0.5, 0.4]]}', "increase"),
        ('{"smiel": [[0, 0.2]]}', "smile [0, 1]"),
        ('{"yaw": [[0, NaN]]}', "finite"),
        ("not json", "not JSON"),
    ):
        keys.write_text(text)
        assert main(["edit-video", str(clip), "--keys", str(keys), "--out", str(out)]) == 2
        assert words in capsys.readouterr().err
        assert not out.exists()
    assert main(["edit-video", str(clip), "--set", "yaw=500", "--out", str(out)]) == 2
    assert "[-90, 90]" in capsys.readouterr().err and not out.exists()


def test_cli_edit_video_crop_with_keys(clip, tmp_path, capsys):
    from core.cli import main
    from core.io.video import probe_video

    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps({"format": "gdpw-keys/1", "interpolation": "linear", "controls": {"jawOpen": [[0, 0], [0.2, 0.5]]}})
    )
    out = tmp_path / "crop.mp4"
    assert (
        main(
            ["edit-video", str(clip), "--keys", str(keys), "--crop", "--max-frames", "3", "--quiet", "--out", str(out)]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["frames"] == 3 and summary["controls"] == ["jawOpen"]
    assert probe_video(out).size == (256, 256)


def test_cli_edit_video_warns_of_turns_beyond_the_measured_range(clip, tmp_path, caplog):
    from core.cli import main

    out = tmp_path / "far.mp4"
    argv = ["edit-video", str(clip), "--set", "yaw=40", "--crop", "--max-frames", "3", "--quiet", "--out", str(out)]
    with caplog.at_level("WARNING", logger="core.edits.video"):
        assert main(argv) == 0
    said = [r.getMessage() for r in caplog.records]
    assert any("turned sideways by up to 4" in m and "3 of 3 frames" in m for m in said), said


def test_folder_with_a_preset_reports_failures_and_does_the_rest(samples, tmp_path, capsys):
    from PIL import Image

    from core.cli import main

    src = tmp_path / "photos"
    src.mkdir()
    Image.open(samples / "images" / "samples__source_video__image__KristiNoem.png").save(src / "a.png")
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(src / "b_noface.png")
    (src / "c.jpg").write_bytes(b"not an image")
    out = tmp_path / "edited"
    assert main(["edit", str(src), "--preset", "smile", "--quiet", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and any("b_noface.png" in e for e in errors) and any("c.jpg" in e for e in errors)
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]
    assert json.loads(captured.out.strip().splitlines()[-1])["done"] == 1


def test_face_by_index(samples, ict_model):
    from PIL import Image

    from core.fit import NoFaceError
    from core.fit.api import face_boxes, fit_image

    big = np.asarray(Image.open(samples / "images" / "samples__source_video__image__KristiNoem.png").convert("RGB"))
    small = np.asarray(Image.fromarray(big).resize((160, 160)))
    group = np.full((256, 480, 3), 90, np.uint8)
    group[:, :256] = big
    group[48:208, 300:460] = small
    boxes = face_boxes(group)
    assert len(boxes) == 2 and boxes[0][2] < 300 < boxes[1][0]  # largest first
    second = fit_image(group, model=ict_model, face=1)
    centre = np.linalg.inv(second.crop) @ np.array([127.5, 127.5, 1.0])
    assert 300 < centre[0] < 460
    first = fit_image(group, model=ict_model, face=0)
    assert (np.linalg.inv(first.crop) @ np.array([127.5, 127.5, 1.0]))[0] < 256
    with pytest.raises(NoFaceError, match="face 2 asked for, but 2"):
        fit_image(group, model=ict_model, face=2)


def test_video_face_by_index_edits_only_that_face(samples, ict_model):
    from PIL import Image

    from core.animator import Animator
    from core.fit import NoFaceError
    from core.io.video import iter_frames

    big = list(iter_frames(samples / CLIP, 4))
    small = [
        np.asarray(Image.fromarray(f).resize((150, 150)))
        for f in iter_frames(samples / "videos" / "samples__source_video__video__Obama_clip1.mp4", 4)
    ]
    frames = []
    for a, b in zip(big, small):
        canvas = np.full((256, 480, 3), 100, np.uint8)
        canvas[:, :256] = a
        canvas[50:200, 310:460] = b
        frames.append(canvas)
    anim = Animator(model=ict_model)
    result = anim.edit_video(frames, {"yaw": 12}, fps=10.0, face=1, progress=False)
    out = np.stack(result.frames).astype(int)
    src = np.stack(frames).astype(int)
    assert result.faceless_frames == 0 and out.shape == src.shape
    assert np.array_equal(out[:, :, :256], src[:, :, :256])  # the largest face is untouched
    assert np.abs(out[:, 60:190, 320:450] - src[:, 60:190, 320:450]).mean() > 2.0  # the small one turned
    with pytest.raises(NoFaceError, match="face 2 asked for"):
        anim.edit_video(frames, {"yaw": 12}, fps=10.0, face=2, progress=False)


def test_edit_frames_keeps_order_and_reads_ahead_a_bounded_window():
    import time

    from core.edits.video import edit_frames

    read = []

    def frames():
        for t in range(12):
            read.append(t)
            yield np.full((2, 2, 3), t, np.uint8)

    ahead = []

    def editor(t, frame):  # uneven work: later frames finish first
        time.sleep(0.02 if t % 3 == 0 else 0.001)
        return frame + 1

    out = []
    for frame in edit_frames(editor, frames(), workers=2):
        ahead.append(len(read) - len(out))  # frames read but not yet handed on
        out.append(int(frame[0, 0, 0]))
    assert out == [t + 1 for t in range(12)]
    assert max(ahead) <= 4  # 2 * workers in flight, never the whole clip
