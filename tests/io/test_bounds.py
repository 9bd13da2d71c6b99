"""Atomic still outputs, output path checks and the working-resolution limit for stills."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.io.atomic import OutputPathError, atomic_path, check_output_path, leftover_parts
from core.io.image import load_working_image, save_image, working_pixels


def test_save_image_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    save_image(target, np.zeros((16, 16, 3), np.uint8))
    before = target.read_bytes()

    def broken_save(self, fp, *args, **kwargs):  # fails half way through writing
        with open(fp, "wb") as handle:
            handle.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_image(target, np.full((16, 16, 3), 255, np.uint8))
    assert target.read_bytes() == before and leftover_parts(tmp_path) == []


def test_output_path_checks(tmp_path):
    with pytest.raises(OutputPathError, match="is a folder"):
        check_output_path(tmp_path)
    with pytest.raises(OutputPathError, match="must end in .png"):
        check_output_path(tmp_path / "x.txt", (".png",))
    with pytest.raises(OutputPathError, match="is a folder"):
        save_image(tmp_path, np.zeros((16, 16, 3), np.uint8))
    with atomic_path("/dev/null") as path:  # a device is written in place, never replaced
        assert str(path) == "/dev/null"
    assert check_output_path(tmp_path / "new" / "x.png").name == "x.png"


def test_oversize_still_is_reduced_with_a_note(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1200, 1600, 3), dtype=np.uint8)).save(path)
    monkeypatch.setenv("GDPW_MAX_WORKING_MP", "0.5")
    assert working_pixels() == 500_000
    image, note = load_working_image(path)
    h, w = image.shape[:2]
    assert h * w <= 500_000 and abs(w / h - 4 / 3) < 0.01
    assert "1600x1200" in note and "0.5 megapixels" in note
    small, note = load_working_image(np.zeros((100, 100, 3), np.uint8))
    assert small.shape == (100, 100, 3) and note == ""
    monkeypatch.setenv("GDPW_MAX_WORKING_MP", "nan")
    with pytest.raises(ValueError, match="GDPW_MAX_WORKING_MP"):
        working_pixels()
