"""The README is a valid Hugging Face Spaces card: front matter parsed, app_file present, sdk gradio, and
sdk_version equal to the gradio pin of requirements.txt; app.py honours Spaces' conventions."""
from __future__ import annotations

import os
import re
import subprocess
import sys

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
    monkeypatch.setattr(app, "tune_process", lambda: None)
    app.main(args + ["--lazy"])
    assert (seen.pop("server_name"), seen.pop("server_port")) == expected
    assert seen == app.launch_kwargs()  # everything else comes from launch_kwargs (shared with tests, benchmarks)
    assert seen["max_file_size"] == "25mb" and seen["show_error"] is False


def test_queue_and_concurrency_limits():
    import app
    from ui import classify_tab

    demo = app.build_demo()
    assert demo._queue is not None, "the queue must be on (progress, streaming, limits)"
    assert demo._queue.max_size == 8 and demo._queue.default_concurrency_limit == 1
    fns = {f.api_name: f for f in demo.fns.values() if f.api_name}
    # generate and morph share one slot at the default limit (1); classify runs 2 at once; transfer 2
    for name in ("generate", "morph"):
        assert (fns[name].concurrency_id, fns[name].concurrency_limit) == ("generate", "default"), name
    for name in ("classify", "heatmap"):
        assert (fns[name].concurrency_id, fns[name].concurrency_limit) == ("classify", 2), name
    assert classify_tab.CLASSIFY_CONCURRENCY == 2
    assert (fns["transfer"].concurrency_id, fns["transfer"].concurrency_limit) == ("transfer", 2)
    assert all(fns[n].queue for n in ("generate", "morph", "classify", "heatmap", "transfer"))


def test_queue_size_and_classify_concurrency_from_the_environment():
    code = ("import app; d = app.build_demo(); f = {x.api_name: x for x in d.fns.values()}; "
            "print(d._queue.max_size, f['classify'].concurrency_limit, f['heatmap'].concurrency_limit)")
    env = dict(os.environ, POSTER_STUDIO_QUEUE_SIZE="3", POSTER_STUDIO_CLASSIFY_CONCURRENCY="5",
               GRADIO_ANALYTICS_ENABLED="False")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "3 5 5"
