"""Checkpoints: save -> load round trip through the Hub mixin, clear CheckpointErrors for corrupt and missing
files, and the Hub round trip (push, pull, offline pull, load) through huggingface_hub's real client against
a loopback HTTP server that speaks the few Hub endpoints those calls use. No test reaches the internet."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import torch
from torch import nn

from conftest import ROOT
from poster_studio import hub
from poster_studio.errors import CheckpointError


class TinyNet(nn.Module, hub.HubMixin):
    """A two-layer test model."""

    def __init__(self, width: int = 8, genres: tuple = ("a", "b")):
        super().__init__()
        self.width = width
        self.fc1 = nn.Linear(4, width)
        self.fc2 = nn.Linear(width, len(genres))

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = TinyNet(width=8)
    folder = hub.save_checkpoint(model, tmp_path / "tiny", description="tiny test model", data="none",
                                 training="none", metrics={"acc": 0.5},
                                 extra_files={"extra.json": lambda p: p.write_text("{}")})
    return model, folder


def test_save_load_round_trip(saved):
    model, folder = saved
    assert {p.name for p in folder.iterdir()} >= {"config.json", "model.safetensors", "README.md", "metrics.json",
                                                  "extra.json"}
    assert not list(folder.parent.glob(".tiny.tmp-*"))  # the atomic write leaves no temp folder
    card = (folder / "README.md").read_text()
    assert "tiny test model" in card and "acc" in card and "poster-studio" in card
    loaded = hub.load_model(TinyNet, "tiny", directory=folder)
    assert loaded.width == 8
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    x = torch.randn(3, 4)
    assert torch.allclose(model(x), loaded(x))


def test_checkpoints_dir_from_env(saved, monkeypatch):
    _, folder = saved
    monkeypatch.setenv(hub.CHECKPOINTS_ENV, str(folder.parent))
    monkeypatch.delenv(hub.HUB_REPO_ENV, raising=False)
    assert hub.resolve("tiny") == folder
    assert hub.load_model(TinyNet, "tiny").width == 8


def test_missing_checkpoint_names_file_and_fix(tmp_path):
    with pytest.raises(CheckpointError) as info:
        hub.load_model(TinyNet, "tiny", directory=tmp_path / "nothing")
    msg = str(info.value)
    assert "config.json" in msg and "Train it" in msg and hub.HUB_REPO_ENV in msg


def test_truncated_safetensors(saved):
    _, folder = saved
    w = folder / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=re.escape(str(w))):
        hub.load_model(TinyNet, "tiny", directory=folder)


def test_bad_config_json(saved):
    _, folder = saved
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json"):
        hub.load_model(TinyNet, "tiny", directory=folder)


def test_shape_mismatch(saved):
    _, folder = saved
    cfg = json.loads((folder / "config.json").read_text())
    cfg["width"] = 16  # the weights were saved for width 8
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="model.safetensors"):
        hub.load_model(TinyNet, "tiny", directory=folder)


def test_no_pickle_in_checkpoint(saved):
    _, folder = saved
    assert not [p for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt")]


# --------------------------------------------------------------------------- a loopback Hugging Face Hub
class FakeHub:
    """Just enough of the Hub's HTTP API for create_repo, upload_folder (preupload + commit),
    repo_info, list_repo_tree and file downloads (HEAD/GET resolve)."""

    def __init__(self):
        self.repos: dict[str, dict] = {}  # repo_id -> {"private", "commits": {sha: {path: bytes}}, "refs": {main: sha}}
        self.requests: list[str] = []
        self.unknown: list[str] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, code, body=b"", headers=None, ctype="application/json"):
                if isinstance(body, (dict, list)):
                    body = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def do_POST(self):
                fake.requests.append(f"POST {self.path}")
                path = urlparse(self.path).path
                body = self._body()
                if path == "/api/repos/create":
                    d = json.loads(body)
                    repo = f"{d['organization']}/{d['name']}" if d.get("organization") else d["name"]
                    with fake.lock:
                        if repo not in fake.repos:
                            fake.repos[repo] = {"private": bool(d.get("private")) or d.get("visibility") == "private",
                                               "commits": {}, "refs": {}}
                    return self._send(200, {"url": f"http://{self.headers['Host']}/{repo}", "name": repo})
                if path == "/api/validate-yaml":  # model card metadata check before a README.md commit
                    return self._send(200, {"errors": [], "warnings": []})
                m = re.fullmatch(r"/api/models/(.+)/preupload/(.+)", path)
                if m:
                    files = json.loads(body)["files"]
                    return self._send(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                       "shouldIgnore": False} for f in files]})
                m = re.fullmatch(r"/api/models/(.+)/commit/(.+)", path)
                if m:
                    repo, rev = m.group(1), unquote(m.group(2))
                    with fake.lock:
                        r = fake.repos.get(repo)
                        if r is None:
                            return self._send(404, {"error": "Repository not found"},
                                              {"X-Error-Code": "RepoNotFound"})
                        parent = r["refs"].get(rev)
                        files = dict(r["commits"][parent]) if parent else {}
                        summary = ""
                        for line in body.decode().splitlines():
                            if not line.strip():
                                continue
                            item = json.loads(line)
                            if item["key"] == "header":
                                summary = item["value"].get("summary", "")
                            elif item["key"] == "file":
                                v = item["value"]
                                files[v["path"]] = base64.b64decode(v["content"]) if v.get("encoding") == "base64" \
                                    else v["content"].encode()
                            elif item["key"] == "deletedFile":
                                files.pop(item["value"]["path"], None)
                            else:
                                return self._send(400, {"error": f"unsupported {item['key']}"})
                        sha = hashlib.sha1(repr((parent, summary, sorted((k, hashlib.sha1(v).hexdigest())
                                                                         for k, v in files.items()))).encode()).hexdigest()
                        r["commits"][sha] = files
                        r["refs"][rev] = sha
                    host = self.headers["Host"]
                    return self._send(200, {"commitUrl": f"http://{host}/{repo}/commit/{sha}", "commitOid": sha,
                                            "commitMessage": summary, "pullRequestUrl": None})
                fake.unknown.append(f"POST {self.path}")
                return self._send(404, {"error": "not implemented"})

            def _resolve(self, repo, rev):
                r = fake.repos.get(repo)
                if r is None:
                    return None, None
                sha = rev if rev in r["commits"] else r["refs"].get(rev)
                return sha, (r["commits"].get(sha) if sha else None)

            def do_HEAD(self):
                self.do_GET()

            def do_GET(self):
                fake.requests.append(f"{self.command} {self.path}")
                url = urlparse(self.path)
                path = unquote(url.path)
                m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/(.+)", path)
                if m:
                    sha, files = self._resolve(m.group(1), m.group(2))
                    if files is None:
                        return self._send(404, {"error": "Revision not found"}, {"X-Error-Code": "RevisionNotFound"})
                    return self._send(200, {"id": m.group(1), "modelId": m.group(1), "sha": sha, "private": False,
                                            "siblings": [{"rfilename": p} for p in sorted(files)], "tags": []})
                m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(/.*)?", path)
                if m:
                    sha, files = self._resolve(m.group(1), m.group(2))
                    if files is None:
                        return self._send(404, {"error": "Revision not found"}, {"X-Error-Code": "RevisionNotFound"})
                    prefix = (m.group(3) or "").strip("/")
                    out = [{"type": "file", "path": p, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                           for p, b in sorted(files.items()) if not prefix or p.startswith(prefix + "/")]
                    dirs = sorted({p.rsplit("/", 1)[0] for p in files if "/" in p})
                    out += [{"type": "directory", "path": d, "oid": "0" * 40, "size": 0} for d in dirs]
                    return self._send(200, out)
                m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
                if m:
                    sha, files = self._resolve(m.group(1), m.group(2))
                    if files is None or m.group(3) not in files:
                        return self._send(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
                    data = files[m.group(3)]
                    return self._send(200, data, {"X-Repo-Commit": sha, "ETag": f'"{hashlib.sha1(data).hexdigest()}"'},
                                      ctype="application/octet-stream")
                fake.unknown.append(f"GET {self.path}")
                return self._send(404, {"error": "not implemented"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


LOAD_SNIPPET = """
import json, sys, torch
from torch import nn
from poster_studio import hub

class TinyNet(nn.Module, hub.HubMixin):
    def __init__(self, width=8, genres=("a", "b")):
        super().__init__()
        self.width = width
        self.fc1 = nn.Linear(4, width)
        self.fc2 = nn.Linear(width, len(genres))

m = hub.load_model(TinyNet, "tiny")
print(json.dumps({"width": m.width, "sum": float(sum(p.double().sum() for p in m.parameters()))}))
"""


def _run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def test_push_pull_round_trip_through_loopback_hub(saved, tmp_path):
    model, folder = saved
    expected = float(sum(p.detach().double().sum() for p in model.parameters()))
    with FakeHub() as fake:
        env = dict(os.environ, HF_ENDPOINT=fake.url, HF_HUB_OFFLINE="0", HF_HOME=str(tmp_path / "hf"),
                   HF_TOKEN="hf_loopback_test_token", HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_XET="1",
                   POSTER_STUDIO_CHECKPOINTS=str(folder.parent), PYTHONPATH=str(ROOT))
        env.pop(hub.HUB_REPO_ENV, None)
        push = _run(["-m", "poster_studio", "push", "tiny", "--hub-repo", "tester/poster-studio", "--private"], env)
        assert push.returncode == 0, push.stderr[-2000:] + f"\nunknown requests: {fake.unknown}"
        repo = fake.repos["tester/poster-studio"]
        assert repo["private"]
        files = repo["commits"][repo["refs"]["main"]]
        assert {"tiny/config.json", "tiny/model.safetensors", "tiny/README.md"} <= set(files)
        assert files["tiny/model.safetensors"] == (folder / "model.safetensors").read_bytes()

        pull = _run(["-m", "poster_studio", "pull", "--hub-repo", "tester/poster-studio"], env)
        assert pull.returncode == 0, pull.stderr[-2000:] + f"\nunknown requests: {fake.unknown}"
        info = json.loads(pull.stdout[: pull.stdout.rindex("}") + 1])
        assert info["models"] == ["tiny"]
        assert Path(info["snapshot"]).is_relative_to(tmp_path / "hf")

        # The app's path: POSTER_STUDIO_HUB_REPO set -> load through the cache, pinned to the pushed commit.
        sha = repo["refs"]["main"]
        env_app = dict(env, POSTER_STUDIO_HUB_REPO="tester/poster-studio", POSTER_STUDIO_HUB_REVISION=sha,
                       POSTER_STUDIO_CHECKPOINTS=str(tmp_path / "no-local-checkpoints"))
        loaded = _run(["-c", LOAD_SNIPPET], env_app)
        assert loaded.returncode == 0, loaded.stderr[-2000:]
        out = json.loads(loaded.stdout.strip().splitlines()[-1])
        assert out["width"] == 8 and abs(out["sum"] - expected) < 1e-5
    # The loopback hub is gone: offline, the pinned revision still loads from the local cache.
    env_offline = dict(env_app, HF_HUB_OFFLINE="1")
    offline = _run(["-c", LOAD_SNIPPET], env_offline)
    assert offline.returncode == 0, offline.stderr[-2000:]
    assert abs(json.loads(offline.stdout.strip().splitlines()[-1])["sum"] - expected) < 1e-5
    assert not fake.unknown, fake.unknown


def test_pull_unknown_repo_is_a_clear_cli_error(tmp_path):
    with FakeHub() as fake:
        env = dict(os.environ, HF_ENDPOINT=fake.url, HF_HUB_OFFLINE="0", HF_HOME=str(tmp_path / "hf"),
                   HF_HUB_DISABLE_TELEMETRY="1", PYTHONPATH=str(ROOT))
        r = _run(["-m", "poster_studio", "pull", "--hub-repo", "nobody/nothing"], env)
    assert r.returncode == 2
    assert r.stderr.startswith("error: Could not pull 'nobody/nothing'") and "Traceback" not in r.stderr


def test_push_without_checkpoint_is_a_clear_cli_error(tmp_path):
    env = dict(os.environ, POSTER_STUDIO_CHECKPOINTS=str(tmp_path), PYTHONPATH=str(ROOT))
    r = _run(["-m", "poster_studio", "push", "classifier", "--hub-repo", "me/x"], env)
    assert r.returncode == 2 and "Nothing to push" in r.stderr and "Traceback" not in r.stderr


def test_training_script_pushes_its_checkpoint_through_loopback_hub(tmp_path):
    """`train/train_generator.py --push-to-hub` (every training script shares the flag) uploads the checkpoint it wrote,
    model card included, through huggingface_hub's real client."""
    from conftest import DATA_DIR

    if not (DATA_DIR / "labels.csv").is_file():
        pytest.skip(f"poster data not found at {DATA_DIR}")
    with FakeHub() as fake:
        env = dict(os.environ, HF_ENDPOINT=fake.url, HF_HUB_OFFLINE="0", HF_HOME=str(tmp_path / "hf"),
                   HF_TOKEN="hf_loopback_test_token", HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_XET="1",
                   PYTHONPATH=str(ROOT))
        r = _run(["train/train_generator.py", "--data", str(DATA_DIR), "--max-images", "8", "--batch", "4",
                  "--width-scale", "0.125", "--max-steps", "2", "--out", str(tmp_path / "run"),
                  "--cache", str(tmp_path / "cache"), "--no-tqdm", "--push-to-hub", "tester/gan", "--private"], env)
        assert r.returncode == 0, r.stderr[-2000:] + f"\nunknown requests: {fake.unknown}"
        repo = fake.repos["tester/gan"]
        assert repo["private"]
        files = repo["commits"][repo["refs"]["main"]]
        assert files["generator/model.safetensors"] == (tmp_path / "run" / "checkpoint" / "model.safetensors").read_bytes()
        assert "generator/README.md" in files and "generator/config.json" in files
