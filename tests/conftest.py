"""Shared test fixtures: data locations, checkpoint presence, and ONE app server per test session
(started on loopback with `python app.py`, shared by the API tests and the browser tests).

No test touches the internet: the Hugging Face Hub is offline (HF_HUB_OFFLINE=1) except where a test
points HF_ENDPOINT at its own loopback server.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data"
DATA_DIR = Path(os.environ.get("POSTER_STUDIO_DATA") or SHARED / "posters")
CONTENT_DIR = Path(os.environ.get("POSTER_STUDIO_CONTENT") or SHARED / "content")
ARTIFACTS = Path(os.environ.get("POSTER_STUDIO_TEST_ARTIFACTS") or Path(tempfile.gettempdir()) / "poster_studio_artifacts")

needs_posters = pytest.mark.skipif(not (DATA_DIR / "labels.csv").is_file(),
                                   reason=f"poster data not found at {DATA_DIR} (set POSTER_STUDIO_DATA)")
needs_content = pytest.mark.skipif(not (CONTENT_DIR / "chelsea.png").is_file(),
                                   reason=f"content photos not found at {CONTENT_DIR} (set POSTER_STUDIO_CONTENT)")


def checkpoints_dir() -> Path:
    return Path(os.environ.get("POSTER_STUDIO_CHECKPOINTS") or ROOT / "checkpoints")


def checkpoint_missing(name: str) -> str | None:
    """Why checkpoint `name` cannot be used by the server, or None when it is there."""
    if os.environ.get("POSTER_STUDIO_HUB_REPO"):
        return None
    folder = checkpoints_dir() / name
    needed = ["config.json", "model.safetensors"]
    if name == "transfer":
        needed += ["exemplars.safetensors", "exemplars.json"]  # written by train/build_exemplars.py
    for f in needed:
        if not (folder / f).is_file():
            return f"checkpoint {folder / f} is missing"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    def __init__(self, url: str, proc: subprocess.Popen, startup_s: float, log: Path):
        self.url, self.proc, self.startup_s, self.log = url, proc, startup_s, log

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def log_size(self) -> int:
        """Bytes in the server log so far (a mark for log_since)."""
        return self.log.stat().st_size

    def log_since(self, mark: int) -> str:
        """What the server logged after `mark` (see log_size)."""
        with open(self.log, "rb") as f:
            f.seek(mark)
            return f.read().decode(errors="replace")


def start_app(env_overrides: dict | None = None, timeout: float = 90.0) -> AppServer:
    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1",
               **(env_overrides or {}))
    env.pop("GRADIO_SERVER_NAME", None)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"app-{port}.log"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.perf_counter() - t0 > timeout:
            proc.kill()
            raise RuntimeError(f"app.py did not start: {log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.25)
    return AppServer(url, proc, time.perf_counter() - t0, log)


@pytest.fixture(scope="session")
def app_server():
    server = start_app()
    yield server
    server.proc.terminate()
    try:
        server.proc.wait(10)
    except subprocess.TimeoutExpired:
        server.proc.kill()


@pytest.fixture(scope="session")
def client(app_server):
    from gradio_client import Client

    return Client(app_server.url, verbose=False)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# ------------------------------------------------------------------------------------------ bad / odd images
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb_bytes(width: int = 20000, height: int = 20000) -> bytes:
    """A valid-looking PNG header claiming width x height (400 megapixels) with a few bytes of data: cheap to
    make, and a decompression bomb for anything that trusts the header."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + 3 * width) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def make_bad_files(folder: Path) -> dict[str, Path]:
    """Each bad input of issue 7 as a file: name -> path (the 50 MB file is sparse, so it costs no disk time)."""
    import io

    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    files = {}

    def put(name: str, data: bytes) -> None:
        (folder / name).write_bytes(data)
        files[name] = folder / name

    put("not_an_image.png", b"this is just some text, not a picture\n" * 20)
    buf = io.BytesIO()
    Image.new("RGB", (120, 180), (200, 30, 30)).save(buf, "JPEG", quality=90)
    put("truncated.jpg", buf.getvalue()[: len(buf.getvalue()) // 2])
    put("page.png", b"<!DOCTYPE html><html><head><title>x</title></head><body>not a png</body></html>\n")
    put("bomb.png", png_bomb_bytes())
    buf = io.BytesIO()
    Image.new("RGB", (1, 1), (0, 0, 0)).save(buf, "PNG")
    put("one_pixel.png", buf.getvalue())
    put("empty.png", b"")
    big = folder / "huge_50mb.jpg"
    with open(big, "wb") as f:
        f.write(b"\xff\xd8\xff\xe0")
        f.truncate(50 * 1024 * 1024)
    files["huge_50mb.jpg"] = big
    return files


def make_odd_images(folder: Path) -> dict[str, Path]:
    """Valid images in awkward modes: grayscale, RGBA, palette, CMYK, 16-bit, animated GIF."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    h, w = 90, 60
    grad = np.linspace(0, 255, w, dtype=np.float32)[None, :].repeat(h, 0)
    out = {}
    Image.fromarray(grad.astype(np.uint8), "L").save(folder / "gray.png")
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., 0] = grad.astype(np.uint8)
    rgba[..., 3] = 128
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    Image.fromarray(np.dstack([grad.astype(np.uint8)] * 3)).convert("P", palette=Image.Palette.ADAPTIVE).save(
        folder / "palette.png")
    Image.new("CMYK", (w, h), (0, 200, 200, 0)).save(folder / "cmyk.jpg", "JPEG")
    Image.fromarray((grad * 257).astype(np.uint16)).save(folder / "gray16.png")
    frames = [Image.new("RGB", (w, h), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    for name in ("gray.png", "rgba.png", "palette.png", "cmyk.jpg", "gray16.png", "animated.gif"):
        out[name] = folder / name
    return out


# What the user must be told for each bad file (a fragment of the one-line message).
BAD_FILE_MESSAGES = {
    "not_an_image.png": "not an image",
    "truncated.jpg": "truncated",
    "page.png": "not an image",
    "bomb.png": "too large",
    "one_pixel.png": "1x1",
    "empty.png": "empty",
    "huge_50mb.jpg": "25 MB",
}
