import numpy as np
import pytest

from core.cli import main
from core.io.examples import default_portrait
from core.io.image import load_image, save_image


@pytest.fixture(scope="module")
def portrait(tmp_path_factory):
    path = tmp_path_factory.mktemp("sheet") / "astronaut.png"
    save_image(path, default_portrait())
    return path


def test_contact_sheet_shows_each_edit_of_each_portrait(portrait, tmp_path, capsys, ict_model):
    out = tmp_path / "sheet.png"
    assert main(["contact-sheet", str(portrait), "--edits", "yaw+30,pitch-20", "--tile", "64", "--out", str(out)]) == 0
    sheet = load_image(out)
    assert sheet.shape[:2] == (22 + 16 + 64, 3 * 64)  # header, the portrait's name, one row of tiles
    tiles = sheet[38:].reshape(64, 3, 64, 3).transpose(1, 0, 2, 3).astype(int)
    assert np.abs(tiles[1] - tiles[0]).mean() > 3 and np.abs(tiles[2] - tiles[0]).mean() > 3  # the edits show
    assert '"edits": ["yaw+30", "pitch-20"]' in capsys.readouterr().out


def test_contact_sheet_refuses_unknown_edits_and_engines(portrait, tmp_path, capsys):
    out = tmp_path / "sheet.png"
    assert main(["contact-sheet", str(portrait), "--edits", "yaw+99", "--out", str(out)]) == 2
    assert "control 'yaw' takes an offset in" in capsys.readouterr().err
    assert main(["contact-sheet", str(portrait), "--engine", "magic", "--out", str(out)]) == 2
    assert "unknown engine(s) magic" in capsys.readouterr().err
    assert not out.exists()


def test_edits_written_as_pose_changes_or_values():
    from core.eval.edits import EDIT_GRID, select_edits
    from core.face import load_face_model

    model = load_face_model("ict")
    cases = select_edits("yaw+25,pitch-15,jawOpen 0.7,smile 0.9", EDIT_GRID, EDIT_GRID, model)
    assert [c.name for c in cases] == ["yaw+25", "pitch-15", "jawOpen 0.7", "smile 0.9"]
    assert cases[0].values == {"yaw": 25.0} and cases[0].offset and cases[1].values == {"pitch": -15.0}
    assert cases[2].values == {"jawOpen": 0.7} and not cases[2].offset
    assert cases[3] is next(c for c in EDIT_GRID if c.name == "smile 0.9")  # a grid name wins
    # values signed the way the grid writes them ("shape000 +3", "gaze -25")
    signed = select_edits("shape000 +2,gaze_yaw -20", EDIT_GRID, EDIT_GRID, model)
    assert [c.values for c in signed] == [{"shape000": 2.0}, {"gaze_yaw": -20.0}]
    for bad, message in (("twirl", "unknown edit"), ("yaw+200", "takes an offset"), ("jawOpen 3", "takes a value")):
        with pytest.raises(ValueError, match=message):
            select_edits(bad, EDIT_GRID, EDIT_GRID, model)
    with pytest.raises(ValueError, match="unknown control 'wobble'"):
        select_edits("wobble 0.5", EDIT_GRID, EDIT_GRID, model)
