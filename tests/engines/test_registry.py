"""One engine seam: an engine registered in one place is driven by the Animator, the CLI and evaluation."""

import csv

import numpy as np
import pytest

from core.engines import ENGINES, EngineResult, EngineSpec, Inspection, engine_names, make_engine, register
from core.engines.base import check_source
from core.face.params import FaceParams


class InvertEngine:
    """A stand-in engine: the source crop with its colours inverted, whatever the target."""

    name = "invert"

    def __init__(self, model) -> None:
        self.model = model

    def prepare(self, crop_image: np.ndarray, params: FaceParams, photo: np.ndarray | None = None) -> np.ndarray:
        check_source(crop_image, params)
        return 255 - crop_image

    def render(self, state: np.ndarray, target: FaceParams, debug: bool = False) -> EngineResult:
        return EngineResult(np.repeat(state[None], target.batch_size, axis=0), None, None)

    def inspect(self, state: np.ndarray, target: FaceParams) -> Inspection:
        return Inspection(image=state, notes=["inverted"])


@pytest.fixture
def invert_engine():
    register("invert", EngineSpec(InvertEngine, "colours inverted (test)"))
    try:
        yield
    finally:
        ENGINES.pop("invert", None)


def test_registry_lists_and_builds(ict_model, invert_engine):
    assert engine_names()[:3] == ["copy", "geometry", "pwm"] and "invert" in engine_names()
    assert "copy" not in engine_names(editing=True)
    assert isinstance(make_engine("invert", ict_model), InvertEngine)
    with pytest.raises(ValueError, match="unknown engine 'nope'; available: copy, geometry, pwm, invert"):
        make_engine("nope", ict_model)


def test_animator_and_cli_use_a_registered_engine(ict_model, invert_engine, tmp_path):
    from core.animator import Animator
    from core.cli import main
    from core.io.examples import default_portrait
    from core.io.image import load_image

    anim = Animator(engine="invert", model=ict_model)
    fit = anim.load_source(default_portrait())
    assert anim.source.engine == "invert"
    out = anim.render({"yaw": 10})
    assert np.array_equal(out, 255 - fit.crop_image)
    assert anim.inspect({"yaw": 10}).notes == ["inverted"]
    path = tmp_path / "inverted.png"
    assert main(["edit", "DEFAULT", "--engine", "invert", "--crop", "--out", str(path)]) == 0
    assert np.array_equal(load_image(path), 255 - fit.crop_image)


def test_evaluate_uses_a_registered_engine(samples, invert_engine, tmp_path):
    pytest.importorskip("dlib")
    from core.cli import main

    clip = samples / "videos" / "data__style_clip__video__M030_front_neutral_level1_001.mp4"
    if not clip.is_file():
        pytest.skip("sample clip absent")
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / clip.name).symlink_to(clip)
    out = tmp_path / "report.csv"
    assert (
        main(
            [
                "evaluate",
                "--engine",
                "invert",
                "--clips",
                str(folder),
                "--pairs",
                "1",
                "--frames-per-clip",
                "3",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    l1 = {r["engine"]: float(r["l1"]) for r in rows if r["direction"] == "forward"}
    assert set(l1) == {"copy", "invert"} and l1["invert"] > 3 * l1["copy"]  # an inverted face is far off
