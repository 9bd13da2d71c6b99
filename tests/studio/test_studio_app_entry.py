"""The Spaces entry point (app.py) honours the usual host and port settings."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def entry():
    spec = importlib.util.spec_from_file_location("gdpw_app_entry", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_defaults_to_localhost(entry):
    assert entry.launch_options({}) == {"server_name": "127.0.0.1", "server_port": 7860}


def test_gradio_variables(entry):
    env = {"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "8123", "PORT": "9000"}
    assert entry.launch_options(env) == {"server_name": "0.0.0.0", "server_port": 8123}


def test_port_variable_listens_everywhere(entry):
    assert entry.launch_options({"PORT": "9000"}) == {"server_name": "0.0.0.0", "server_port": 9000}
    assert entry.launch_options({"SPACE_ID": "me/studio"})["server_name"] == "0.0.0.0"


def test_bad_port(entry):
    with pytest.raises(SystemExit):
        entry.launch_options({"PORT": "eighty"})


def test_readme_front_matter():
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n")
    head = text.split("---\n")[1]
    for line in ("title: GDPW Studio", "sdk: gradio", "app_file: app.py", "license: mit"):
        assert line in head


def test_import_is_light():
    """``import studio`` does not import gradio (heavy imports stay where they are needed)."""
    import subprocess
    import sys

    code = "import sys, studio; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"
