"""The README is a valid Hugging Face Spaces card: front matter parsed, app_file present, sdk gradio, and
sdk_version equal to the gradio pin of requirements.txt; app.py honours Spaces' conventions."""
from __future__ import annotations

import re

import pytest

from conftest import ROOT


def _front_matter() -> dict:
    import yaml

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), "README.md must start with YAML front matter"
    end = text.index("\n---\n", 4)
    return yaml.safe_load(text[4:end])


def _pin(package: str) -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        m = re.match(rf"^\s*{re.escape(package)}\s*==\s*([\w.]+)", line, re.I)
        if m:
            return m.group(1)
    raise AssertionError(f"{package} is not pinned with == in requirements.txt")


def test_front_matter_is_a_gradio_space():
    meta = _front_matter()
    for key in ("title", "emoji", "colorFrom", "colorTo", "sdk", "sdk_version", "app_file", "license",
                "short_description"):
        assert meta.get(key), f"front matter lacks {key}"
    assert meta["sdk"] == "gradio"
    assert (ROOT / meta["app_file"]).is_file()
    assert str(meta["sdk_version"]) == _pin("gradio")
    assert len(meta["short_description"]) <= 60  # the Hub's limit
    colors = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
    assert meta["colorFrom"] in colors and meta["colorTo"] in colors


def test_installed_gradio_matches_the_pin():
    import gradio

    assert gradio.__version__ == _pin("gradio")


def test_readme_documents_the_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for cmd in ("pip install -r requirements.txt", "python app.py", "pytest", "api_name=\"/generate\"",
                "api_name=\"/classify\"", "api_name=\"/transfer\"", "python -m poster_studio pull --hub-repo",
                "POSTER_STUDIO_HUB_REPO"):
        assert cmd in text, cmd
    for shot in re.findall(r"\(docs/([\w-]+\.png)\)", text):
        assert (ROOT / "docs" / shot).is_file(), f"README links docs/{shot} which does not exist"


@pytest.mark.parametrize("env, args, expected", [
    ({}, [], ("127.0.0.1", 7860)),
    ({"PORT": "7000"}, [], ("127.0.0.1", 7000)),
    ({"GRADIO_SERVER_PORT": "7001", "GRADIO_SERVER_NAME": "0.0.0.0"}, [], ("0.0.0.0", 7001)),
    ({"PORT": "7000"}, ["--host", "0.0.0.0", "--port", "7002"], ("0.0.0.0", 7002)),
])
def test_app_host_and_port_follow_spaces_conventions(monkeypatch, env, args, expected):
    import app

    for k in ("PORT", "GRADIO_SERVER_PORT", "GRADIO_SERVER_NAME"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    seen = {}

    class FakeDemo:
        def launch(self, **kw):
            seen.update(kw)

    monkeypatch.setattr(app, "build_demo", lambda services=None: FakeDemo())
    app.main(args + ["--lazy"])
    assert (seen["server_name"], seen["server_port"]) == expected
    assert seen["max_file_size"] == app.MAX_FILE_SIZE


def test_queue_and_limits():
    import app

    demo = app.build_demo()
    assert demo._queue is not None or getattr(demo, "enable_queue", True)
    assert app.QUEUE_MAX_SIZE >= 1 and app.CONCURRENCY in (1, 2)
    assert app.MAX_FILE_SIZE == "25mb"
