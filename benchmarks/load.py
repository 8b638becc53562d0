"""Load test: start the app on loopback (or use --url), drive it with gradio_client, print one JSON object.

Scenario "burst": N clients x M requests mixing /generate, /classify and /transfer (fast). Reports completed
requests, explicit "queue is full" (busy) answers and the time to them, failures, throughput against the same
completed requests run one after another (from the single-request medians), p50/p95 latency of the accepted
requests per endpoint against a single request (median of 3 on the idle server), and the server's RSS.
A separate light process (plain urllib) uploads the content image every 0.25 s during the burst and times the
server's answers (its 503s are the "busy" answers to uploads, apart from the load generator's own scheduling).
Scenario "disconnect": three client processes start quality transfers and are SIGKILLed; the server's CPU use is
sampled until it is idle, then 8 clients send fast transfers at once.
Each section has a `targets` object (true = met, null = not measurable here). Endpoints whose model is not
available are listed under `skipped`.

    python benchmarks/load.py                                  # both scenarios, 32 clients x 5 requests
    python benchmarks/load.py --scenario burst --clients 4 --requests 1
    python benchmarks/load.py --scenario disconnect --quality-steps 100
    python benchmarks/load.py --url http://127.0.0.1:7860/ --pid 1234   # a running server (--pid for RSS/CPU)
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENDPOINTS = ("generate", "classify", "transfer")
QUALITY_SIZE, FAST_SIZE = "512x768", "384x576"
IDLE_CPU_CORES = 0.10     # "idle": below 10% of one core ...
IDLE_HOLD_S = 2.0         # ... for this long
IDLE_MAX_WAIT_S = 30.0
CPU_SAMPLE_S = 0.5


# ---------------------------------------------------------------------------------------------- server, /proc
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _cpu_seconds(pid: int) -> float | None:
    """utime+stime of the process (all its threads) and of its live descendants, in CPU seconds."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "; fields[0] is the state
        ppid, utime, stime = int(fields[1]), int(fields[11]), int(fields[12])
        children.setdefault(ppid, []).append(int(d.name))
        ticks[int(d.name)] = utime + stime
    if pid not in ticks:
        return None
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += ticks.get(p, 0)
        todo.extend(children.get(p, []))
    return total / os.sysconf("SC_CLK_TCK")


class RssMonitor(threading.Thread):
    def __init__(self, pid: int, every: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak, self._stop_ev = pid, every, 0.0, threading.Event()

    def run(self):
        while not self._stop_ev.is_set():
            r = _rss_mb(self.pid)
            if r is not None:
                self.peak = max(self.peak, r)
            time.sleep(self.every)

    def stop(self):
        self._stop_ev.set()
        self.join(2)


def _start_server(port: int, env_extra: dict) -> tuple[subprocess.Popen, float, str, str]:
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"),
               **env_extra)
    log = open(Path(tempfile.gettempdir()) / f"poster-studio-load-{port}.log", "wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.perf_counter() - t0 > 120:
                proc.kill()
                proc.wait(10)
                raise SystemExit(f"the app did not start; see {log.name}")
            time.sleep(0.2)
    return proc, time.perf_counter() - t0, url, log.name


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


# ---------------------------------------------------------------------------------------------- requests
def _content_image(tmp: Path) -> Path:
    """A synthetic 512x768 picture (gradient, shapes): no data folder needed."""
    from PIL import Image, ImageDraw

    w, h = 512, 768
    img = Image.new("RGB", (w, h))
    img.putdata([(int(255 * x / w), int(255 * y / h), 128 + int(127 * ((x + y) % 97) / 97))
                 for y in range(h) for x in range(w)])
    d = ImageDraw.Draw(img)
    d.ellipse((60, 80, 300, 320), fill=(230, 200, 40), outline=(20, 20, 20), width=6)
    d.rectangle((220, 380, 470, 700), fill=(40, 60, 160), outline=(250, 250, 250), width=8)
    d.polygon([(40, 740), (200, 450), (330, 740)], fill=(170, 30, 40))
    path = tmp / "content.png"
    img.save(path)
    return path


def _inputs(image: Path) -> dict:
    """Request arguments per endpoint, by request index."""
    from gradio_client import handle_file

    return {
        "generate": lambda i: ((["Comedy", "Horror_Thriller", "Drama", "Animation"][i % 4],), 8, i, 0.7, "native"),
        "classify": lambda i: (handle_file(str(image)), "top"),
        # transfer(content, genre, engine, strength, preserve_color, size, steps, style_files)
        "transfer": lambda i: (handle_file(str(image)), ["Comedy", "Horror_Thriller", "Romance"][i % 3], "fast",
                               1.0, False, FAST_SIZE, 10, []),
    }


def _is_busy(exc: BaseException) -> bool:
    """The server's explicit "busy": gradio_client's QueueError (Gradio's queue_full on joining the queue), or HTTP
    503 on the upload that comes first (the app refuses uploads at once while its queue is full)."""
    from gradio_client.utils import QueueError

    status = getattr(getattr(exc, "response", None), "status_code", None)
    return isinstance(exc, QueueError) or status == 503 or "queue is full" in str(exc).lower()


class UploadTimer:
    """Times every file upload gradio_client makes in this process (its `httpx.post` to the server's /upload, with a
    new HTTP client, SSL context included, for each file) and keeps (HTTP status, seconds): the client's own share
    of a refused upload's answer, beside the server's (UploadProbe) and the whole request's (busy_answer_s)."""

    def __init__(self):
        import gradio_client.client as gc

        self.records: list[tuple[int, float]] = []
        self._lock = threading.Lock()
        self._httpx = gc.httpx
        self._real = gc.httpx.post

        def post(url, *a, **kw):
            t0 = time.perf_counter()
            status = 0
            try:
                r = self._real(url, *a, **kw)
                status = r.status_code
                return r
            finally:
                if str(url).rstrip("/").endswith("/upload"):
                    with self._lock:
                        self.records.append((status, time.perf_counter() - t0))

        self._httpx.post = post

    def stop(self) -> list[tuple[int, float]]:
        self._httpx.post = self._real
        return list(self.records)


def _call(client, endpoint: str, args, timeout: float) -> tuple[str, float, str]:
    """One request: ("ok" | "busy" | "timeout" | "error", seconds, message)."""
    t0 = time.perf_counter()
    job = client.submit(*args, api_name=f"/{endpoint}")
    try:
        job.result(timeout=timeout)
        return "ok", time.perf_counter() - t0, ""
    except FutureTimeout:
        job.cancel()
        return "timeout", time.perf_counter() - t0, f"no answer in {timeout:g} s"
    except Exception as exc:  # noqa: BLE001  (every outcome is recorded)
        dt = time.perf_counter() - t0
        return ("busy" if _is_busy(exc) else "error"), dt, f"{type(exc).__name__}: {str(exc)[:200]}"


def _single(client, endpoint: str, make_args, timeout: float, n: int = 3) -> tuple[float | None, str | None]:
    """Median latency of n requests one after another, or (None, why) when the endpoint does not work."""
    times = []
    for i in range(n):
        outcome, dt, msg = _call(client, endpoint, make_args(i), timeout)
        if outcome != "ok":
            return None, msg
        times.append(dt)
    return statistics.median(times), None


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, max(0, round(q * (len(v) - 1))))], 3)


def _clients(url: str, n: int) -> list:
    """n connected clients (each fetches the app's config), opened before a scenario's clock starts (two minutes for
    each HTTP call, not gradio_client's 20 s: on a machine busy with other work the config can take longer)."""
    from gradio_client import Client

    with ThreadPoolExecutor(min(n, 8)) as pool:
        return list(pool.map(lambda _: Client(url, verbose=False, httpx_kwargs={"timeout": 120}), range(n)))


def _run_all(fn, n: int, timeout: float) -> None:
    """fn(0..n-1) in n threads at once; waits at most `timeout` s for all of them."""
    pool = ThreadPoolExecutor(n)
    try:
        futures = [pool.submit(fn, i) for i in range(n)]
        deadline = time.monotonic() + timeout
        for f in futures:
            f.result(timeout=max(0.1, deadline - time.monotonic()))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _close(clients: list) -> None:
    for c in clients:
        try:
            c.close()
        except Exception:  # noqa: BLE001
            pass


# ---------------------------------------------------------------------------------------------- burst
def run_burst(url: str, pid: int | None, args, inputs: dict, single: dict, skipped: dict) -> dict:
    endpoints = [e for e in args.endpoints if e in single]
    out: dict = {"clients": args.clients, "requests_per_client": args.requests, "queue_size": args.queue_size,
                 "single_request_s": {e: round(single[e], 3) for e in endpoints}, "skipped": skipped}
    if not endpoints:
        return out | {"error": "no endpoint available"}

    clients = _clients(url, args.clients)
    rss_before = _rss_mb(pid)
    monitor = RssMonitor(pid) if pid else None
    if monitor:
        monitor.start()
    records: list[tuple[str, str, float, str]] = []     # (endpoint, outcome, seconds, message)
    lock = threading.Lock()
    go = threading.Barrier(args.clients)

    def client_run(ci: int) -> None:
        rng = random.Random(ci)
        go.wait(timeout=120)
        for r in range(args.requests):
            ep = endpoints[(ci + r) % len(endpoints)]
            rec = _call(clients[ci], ep, inputs[ep](ci * args.requests + r), args.timeout)
            with lock:
                records.append((ep, *rec))
            if rec[0] == "busy" and r + 1 < args.requests:
                time.sleep(rng.uniform(args.backoff, 2 * args.backoff))   # back off, do not hammer

    probe = UploadProbe(url, args.image) if getattr(args, "image", None) else None
    timer = UploadTimer()
    t0 = time.perf_counter()
    _run_all(client_run, args.clients, args.requests * (args.timeout + 2 * args.backoff + 5) + 30)
    wall = time.perf_counter() - t0
    probed = probe.stop() if probe else []
    client_uploads = timer.stop()
    rss_after = peak = None
    if monitor:
        time.sleep(args.settle)
        monitor.stop()
        rss_after, peak = _rss_mb(pid), monitor.peak
    _close(clients)

    ok = [r for r in records if r[1] == "ok"]
    busy = [r for r in records if r[1] == "busy"]
    failed = [r for r in records if r[1] not in ("ok", "busy")]
    sequential_s = sum(single[r[0]] for r in ok)         # the completed requests run one after another
    per_ep = {}
    for e in endpoints:
        lat = [r[2] for r in ok if r[0] == e]
        p95 = _pct(lat, 0.95)
        busy_e = [r[2] for r in busy if r[0] == e]
        per_ep[e] = {"completed": len(lat), "busy": len(busy_e), "busy_answer_p95_s": _pct(busy_e, 0.95),
                     "failed": sum(r[0] == e for r in failed), "p50_s": _pct(lat, 0.5), "p95_s": p95,
                     "single_s": round(single[e], 3),
                     "p95_over_single": round(p95 / single[e], 2) if p95 is not None else None}
    ratios = [v["p95_over_single"] for v in per_ep.values() if v["p95_over_single"] is not None]
    busy_t = [r[2] for r in busy]
    refused = [t for status, t in probed if status == 503]
    accepted = [t for status, t in probed if status == 200]
    throughput_ratio = round(sequential_s / wall, 3) if wall > 0 and ok else None
    growth = round(rss_after - rss_before, 1) if rss_after is not None and rss_before is not None else None
    limit = args.queue_size + 2
    out.update({
        "total_requests": len(records),
        "completed": len(ok),
        "busy": len(busy),
        "failed": len(failed),
        "failure_samples": sorted({f"{r[0]}: {r[1]}: {r[3]}" for r in failed})[:5],
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(ok) / wall, 3) if wall > 0 else None,
        "sequential_rps": round(len(ok) / sequential_s, 3) if sequential_s else None,
        "throughput_ratio": throughput_ratio,
        "busy_answer_s": {"p50": _pct(busy_t, 0.5), "p95": _pct(busy_t, 0.95), "max": _pct(busy_t, 1.0)},
        "upload_probe": {"uploads": len(probed), "refused_503": len(refused),
                         "refused_answer_s": {"p50": _pct(refused, 0.5), "p95": _pct(refused, 0.95),
                                              "max": _pct(refused, 1.0)},
                         "accepted_answer_s": {"p50": _pct(accepted, 0.5), "p95": _pct(accepted, 0.95)}},
        "client_upload_call_s": {  # gradio_client's own upload call, in this process of many client threads
            kind: {"n": len(ts), "p50": _pct(ts, 0.5), "p95": _pct(ts, 0.95)}
            for kind, ts in (("refused_503", [t for st, t in client_uploads if st == 503]),
                             ("accepted", [t for st, t in client_uploads if st == 200]))},
        "per_endpoint": per_ep,
        "max_p95_over_single": max(ratios) if ratios else None,
        "p95_over_single_limit": limit,
        "server_rss_before_mb": round(rss_before, 1) if rss_before is not None else None,
        "server_peak_rss_mb": round(peak, 1) if peak is not None else None,
        "server_rss_after_mb": round(rss_after, 1) if rss_after is not None else None,
        "server_rss_growth_mb": growth,
        "targets": {
            "no_failures": not failed,
            "throughput_ratio_ge_0.8": throughput_ratio is not None and throughput_ratio >= 0.8,
            "p95_accepted_le_queue_plus_2": bool(ratios) and max(ratios) <= limit,
            "busy_answer_p95_lt_1s": (_pct(busy_t, 0.95) < 1.0) if busy_t else True,
            "probe_refused_upload_p95_lt_1s": (_pct(refused, 0.95) < 1.0) if refused else None,
            "rss_growth_lt_200mb": (growth < 200) if growth is not None else None,
        },
    })
    return out


# ---------------------------------------------------------------------------------------------- upload probe
UPLOAD_PROBE = r"""
import json, signal, sys, time, urllib.error, urllib.request, uuid
url, image, interval = sys.argv[1], open(sys.argv[2], "rb").read(), float(sys.argv[3])
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
boundary = uuid.uuid4().hex
body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"probe.png\"\r\n"
        f"Content-Type: image/png\r\n\r\n").encode() + image + f"\r\n--{boundary}--\r\n".encode()
out = []
print("ready", flush=True)
while not stop:
    req = urllib.request.Request(url.rstrip("/") + "/gradio_api/upload", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except Exception:
        status = -1
    out.append((status, time.perf_counter() - t0))
    time.sleep(interval)
print(json.dumps(out), flush=True)
"""


class UploadProbe:
    """A separate, light process that uploads the content image every `interval` s during the burst with plain
    urllib (no gradio_client, none of the load generator's 32 threads) and times each answer: the 503s are the
    server's own "busy" answers, measured apart from the load generator's scheduling on the shared cores."""

    def __init__(self, url: str, image: Path, interval: float = 0.25):
        self.proc = subprocess.Popen([sys.executable, "-c", UPLOAD_PROBE, url, str(image), str(interval)],
                                     stdout=subprocess.PIPE, text=True)
        self.proc.stdout.readline()  # "ready"

    def stop(self) -> list[tuple[int, float]]:
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=90)
            return [tuple(r) for r in json.loads(out.strip().splitlines()[-1])]
        except (subprocess.TimeoutExpired, ValueError, IndexError):
            self.proc.kill()
            return []


# ---------------------------------------------------------------------------------------------- disconnect
QUALITY_CLIENT = r"""
import sys, time
from gradio_client import Client, handle_file
from gradio_client.utils import Status
url, image, size, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = Client(url, verbose=False)
job = c.submit(handle_file(image), "Horror_Thriller", "quality", 1.0, False, size, steps, [], api_name="/transfer")
t0 = time.time()
code = job.status().code
while code in (Status.STARTING, Status.JOINING_QUEUE) and time.time() - t0 < 60:
    time.sleep(0.05)
    code = job.status().code
print("submitted", code.value, flush=True)
time.sleep(3600)  # until SIGKILLed
"""


def _read_line(proc: subprocess.Popen, deadline: float) -> str | None:
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            return proc.stdout.readline().decode(errors="replace").strip() or None
        if proc.poll() is not None:
            return None
    return None


def _cpu_cores(pid: int | None, seconds: float) -> float | None:
    """Mean CPU use of the server (in cores) over the next `seconds`."""
    if pid is None:
        time.sleep(seconds)
        return None
    a, t0 = _cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    b = _cpu_seconds(pid)
    return round(max(0.0, b - a) / (time.monotonic() - t0), 3) if a is not None and b is not None else None


def _wait_idle(pid: int, t_kill: float) -> tuple[float | None, list]:
    """Sample the server's CPU every CPU_SAMPLE_S from the kills on; seconds from the kills to the start of the first
    stretch of IDLE_HOLD_S below IDLE_CPU_CORES (None if none within IDLE_MAX_WAIT_S), and the samples."""
    samples: list[list[float]] = []
    prev_t, prev_c = t_kill, _cpu_seconds(pid)
    quiet_since = None
    while True:
        time.sleep(max(0.0, prev_t + CPU_SAMPLE_S - time.monotonic()))
        now, c = time.monotonic(), _cpu_seconds(pid)
        if c is None or prev_c is None:
            return None, samples
        cores = max(0.0, c - prev_c) / (now - prev_t)
        samples.append(round(cores, 2))
        if cores < IDLE_CPU_CORES:
            quiet_since = prev_t if quiet_since is None else quiet_since
            if now - quiet_since >= IDLE_HOLD_S:
                return round(quiet_since - t_kill, 2), samples
        else:
            quiet_since = None
        if now - t_kill >= IDLE_MAX_WAIT_S:
            return None, samples
        prev_t, prev_c = now, c


def run_disconnect(url: str, pid: int | None, args, image: Path, inputs: dict, skipped: dict) -> dict:
    from gradio_client import Client

    out: dict = {"quality_clients": 3, "quality_size": QUALITY_SIZE, "quality_steps": args.quality_steps,
                 "fast_clients": args.fast_clients, "fast_size": FAST_SIZE, "queue_size": args.queue_size}
    if "transfer" in skipped:
        return out | {"skipped": {"transfer": skipped["transfer"]}}
    probe = Client(url, verbose=False)
    single, why = _single(probe, "transfer", inputs["transfer"], args.timeout)
    probe.close()
    if single is None:
        return out | {"skipped": {"transfer": why}}
    out["single_fast_transfer_s"] = round(single, 3)
    fast_clients = _clients(url, args.fast_clients)   # connected before the clock starts

    procs: list[subprocess.Popen] = []
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t_kill = None
    try:
        for _ in range(3):
            procs.append(subprocess.Popen([sys.executable, "-c", QUALITY_CLIENT, url, str(image), QUALITY_SIZE,
                                           str(args.quality_steps)], stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, env=env))
        deadline = time.monotonic() + 120
        out["quality_status_at_submit"] = [(_read_line(p, deadline) or "no answer").replace("submitted ", "")
                                           for p in procs]
        out["cpu_before_kill_cores"] = _cpu_cores(pid, args.kill_after)
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
        t_kill = time.monotonic()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)

    if pid is not None:
        idle_after, samples = _wait_idle(pid, t_kill)
        out["cpu_idle_after_s"] = idle_after
        out["cpu_sample_every_s"] = CPU_SAMPLE_S
        out["cpu_cores_after_kill"] = samples       # the server's CPU use (cores) in each interval after the kills
        if idle_after is None:
            out["cpu_note"] = (f"the server's CPU use did not stay below {IDLE_CPU_CORES:g} core for "
                               f"{IDLE_HOLD_S:g} s within {IDLE_MAX_WAIT_S:g} s of the disconnects")
    else:
        out["cpu_idle_after_s"] = None
        out["cpu_note"] = "no server pid (start the server here, or pass --pid with --url)"
        time.sleep(IDLE_HOLD_S)

    records: list[tuple[str, float, str]] = []
    lock = threading.Lock()
    go = threading.Barrier(args.fast_clients)

    def fast(ci: int) -> None:
        go.wait(timeout=120)
        rec = _call(fast_clients[ci], "transfer", inputs["transfer"](ci), args.timeout)
        with lock:
            records.append(rec)

    t0 = time.perf_counter()
    _run_all(fast, args.fast_clients, args.timeout + 30)
    wall = time.perf_counter() - t0
    _close(fast_clients)
    lat = [r[1] for r in records if r[0] == "ok"]
    failed = [r for r in records if r[0] not in ("ok", "busy")]
    p95 = _pct(lat, 0.95)
    ratio = round(p95 / single, 2) if p95 is not None else None
    out.update({
        "fast_completed": len(lat),
        "fast_busy": sum(r[0] == "busy" for r in records),
        "fast_failed": len(failed),
        "failure_samples": sorted({f"{r[0]}: {r[2]}" for r in failed})[:5],
        "fast_wall_s": round(wall, 2),
        "fast_p50_s": _pct(lat, 0.5),
        "fast_p95_s": p95,
        "fast_p95_over_single": ratio,
        "targets": {
            "all_fast_complete": len(lat) == args.fast_clients,
            "fast_p95_le_3x_single": ratio is not None and ratio <= 3.0,
            "cpu_idle_within_10s": (out["cpu_idle_after_s"] is not None and out["cpu_idle_after_s"] <= 10.0)
            if pid is not None else None,
        },
    })
    return out


# ---------------------------------------------------------------------------------------------- main
def _json(obj) -> str:
    """Indented JSON with lists of numbers on one line."""
    return re.sub(r"\[\s*([-0-9.eE,\s]+?)\s*\]",
                  lambda m: "[" + ", ".join(x.strip(",") for x in m.group(1).split()) + "]", json.dumps(obj, indent=2))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", choices=["burst", "disconnect", "all"], default="all")
    p.add_argument("--clients", type=int, default=32, help="burst: concurrent clients")
    p.add_argument("--requests", type=int, default=5, help="burst: requests per client")
    p.add_argument("--endpoints", nargs="+", default=list(ENDPOINTS), choices=ENDPOINTS, help="burst: the mix")
    p.add_argument("--backoff", type=float, default=0.5,
                   help="burst: a client answered busy waits a random backoff..2*backoff s before its next request")
    p.add_argument("--queue-size", type=int, default=int(os.environ.get("POSTER_STUDIO_QUEUE_SIZE") or 8),
                   help="server queue size (POSTER_STUDIO_QUEUE_SIZE for the server started here; with --url, "
                        "the one the server uses)")
    p.add_argument("--quality-steps", type=int, default=500, help="disconnect: steps of the quality transfers")
    p.add_argument("--fast-clients", type=int, default=8, help="disconnect: fast transfers after the kills")
    p.add_argument("--kill-after", type=float, default=3.0,
                   help="disconnect: seconds between the quality jobs entering the queue and the kills")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for any one answer")
    p.add_argument("--url", default=None, help="use this running server instead of starting one")
    p.add_argument("--pid", type=int, default=None, help="with --url: the server's pid, for RSS and CPU figures")
    p.add_argument("--settle", type=float, default=3.0, help="burst: seconds to wait after it before the RSS")
    args = p.parse_args(argv)

    from gradio_client import Client

    tmp = Path(tempfile.mkdtemp(prefix="poster-load-"))
    proc, startup, url, pid, log = None, None, args.url, args.pid, None
    result: dict = {"url": url, "scenario": args.scenario, "cpu_cores": os.cpu_count()}
    try:
        if url is None:
            proc, startup, url, log = _start_server(_free_port(), {"POSTER_STUDIO_QUEUE_SIZE": str(args.queue_size)})
            pid = proc.pid
        result.update({"url": url, "server_log": log, "server_startup_s": round(startup, 2) if startup else None})
        image = _content_image(tmp)
        args.image = image
        inputs = _inputs(image)
        # single-request latency per endpoint on the idle server (also finds the endpoints whose model is missing)
        probe = Client(url, verbose=False)
        single, skipped = {}, {}
        wanted = set(args.endpoints) | ({"transfer"} if args.scenario != "burst" else set())
        for ep in [e for e in ENDPOINTS if e in wanted]:
            s, why = _single(probe, ep, inputs[ep], args.timeout)
            if s is None:
                skipped[ep] = why
            else:
                single[ep] = s
        probe.close()
        if args.scenario in ("burst", "all"):
            result["burst"] = run_burst(url, pid, args, inputs, single, skipped)
        if args.scenario in ("disconnect", "all"):
            result["disconnect"] = run_disconnect(url, pid, args, image, inputs, skipped)
        if proc:
            result["server_alive"] = proc.poll() is None
    finally:
        _stop(proc)
    print(_json(result))
    return result


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # gradio_client's job threads for cancelled requests must not hold the exit
