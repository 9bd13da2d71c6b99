"""Bad inputs show a message and the studio keeps serving, with the previous portrait and edits kept."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio_client")


def _upload(client, path):
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)), api_name="/upload")


def _status(studio, out, outputs):
    return out[outputs.index(studio.status)]


def _edit(client, studio, values, **edits):
    values = list(values)
    for name, v in edits.items():
        values[studio.names.index(name)] = v
    return client.predict(True, *values, api_name="/render")


@pytest.fixture
def loaded(studio_server, client, portrait):
    """A client with the portrait loaded and an edit made (yaw 15)."""
    studio = studio_server.studio
    out = _upload(client, portrait)
    values = list(out[-len(studio.names) :])
    res = _edit(client, studio, values, yaw=15.0)
    values[studio.names.index("yaw")] = 15.0
    image = np.asarray(Image.open(res[studio.edit_outputs.index(studio.result_img)]).convert("RGB"))
    return studio, values, image


def _still_works(client, studio, values, image):
    """The next request renders the previous portrait with the previous edits, then a new edit works."""
    same = client.predict(True, *values, api_name="/render")
    got = np.asarray(Image.open(same[studio.edit_outputs.index(studio.result_img)]).convert("RGB"))
    assert np.abs(got.astype(int) - image.astype(int)).max() <= 1
    moved = _edit(client, studio, values, yaw=-10.0)
    assert "Rendered" in _status(studio, moved, studio.edit_outputs)


def test_text_file_named_jpg(loaded, client, tmp_path):
    studio, values, image = loaded
    fake = tmp_path / "holiday.jpg"
    fake.write_text("this is not a photo\n" * 20)
    out = _upload(client, fake)
    msg = _status(studio, out, studio.load_outputs)
    assert "holiday.jpg" in msg and "not a readable image" in msg
    assert "kept" in msg
    assert str(tmp_path) not in msg  # no server paths in messages
    _still_works(client, studio, values, image)


def test_photo_without_a_face(loaded, client, tmp_path):
    studio, values, image = loaded
    yy, xx = np.mgrid[0:300, 0:400]
    landscape = np.stack([xx * 0.5, yy * 0.6 + 40, 200 - yy * 0.3], -1).clip(0, 255).astype(np.uint8)
    path = tmp_path / "landscape.png"
    Image.fromarray(landscape).save(path)
    out = _upload(client, path)
    msg = _status(studio, out, studio.load_outputs)
    assert "landscape.png" in msg and "face" in msg.lower()
    _still_works(client, studio, values, image)


@pytest.mark.slow
def test_twenty_megapixel_photo(loaded, client, portrait, tmp_path):
    studio, values, image = loaded
    small = Image.open(portrait).convert("RGB")
    side = 3650
    big = Image.new("RGB", (5480, side), small.getpixel((2, 2)))
    big.paste(small.resize((side, side), Image.Resampling.BICUBIC), ((5480 - side) // 2, 0))
    path = tmp_path / "big.jpg"
    big.save(path, quality=88)
    assert big.size[0] * big.size[1] >= 20_000_000
    out = _upload(client, path)
    msg = _status(studio, out, studio.load_outputs)
    assert "Loaded big.jpg" in msg
    assert "5480×3650" in out[studio.load_outputs.index(studio.fit_md)]
    new_values = list(out[-len(studio.names) :])
    moved = _edit(client, studio, new_values, yaw=10.0, jawOpen=0.3)
    assert "Rendered" in _status(studio, moved, studio.edit_outputs)
    # the page shows a light preview of the source, not 20 megapixels
    preview = Image.open(out[studio.load_outputs.index(studio.source_img)])
    assert max(preview.size) <= 1024


def test_bad_driving_video(studio_server, client, tmp_path):
    from gradio_client import handle_file

    studio = studio_server.studio
    fake = tmp_path / "clip.mp4"
    fake.write_bytes(b"\x00not a video" * 100)
    video, msg = client.predict(handle_file(str(fake)), "relative", 3, False, api_name="/reenact")
    assert msg.startswith("⚠") and "video" in msg.lower() and "clip.mp4" in msg
    assert "/tmp" not in msg and str(tmp_path) not in msg
    assert "ffmpeg version" not in msg and "Copyright" not in msg and "stderr" not in msg
    # and the editor still answers in that session
    res = client.predict(api_name="/reset")
    assert "Reset" in res[studio.edit_outputs.index(studio.status)]
