"""The processes under test, as subprocesses: photo-relay (`photo-relay serve`), WsgiDAV,
and the network floor (bench/floor_server.py, the least a durable HTTP receiver does).

Each starts on a free 127.0.0.1 port with its own folder in the bench's temp dir. The
relay worker of photo-relay is held (its target folder cannot be created), so an ingest
figure is the ingest alone; the relay is measured on its own.
"""

from __future__ import annotations

import compileall
import functools
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from app.config import Settings
from app.store.db import Database
from app.store.state import State
from app.tokens import hash_token, new_token

__all__ = [
    "FloorService",
    "RelayService",
    "RssSampler",
    "WebDavService",
    "cpu_seconds",
    "free_port",
    "status_bytes",
    "warm_page_cache",
]

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
# A folder below /dev/null can never be created: the target check fails and the relay waits.
HELD_TARGET = "/dev/null/photo-relay-bench-library"
WARM_MIB = 2048  # more than any one figure writes
# WsgiDAV reads each body in 1 MiB blocks, a new buffer each time. With glibc's default
# (sliding) thresholds such a buffer was often mapped and unmapped, or the heap trimmed
# under it, so every MiB was faulted in and zeroed again: perf showed page faults and
# clear_page in WsgiDAV, whose CPU for taking 1 GiB swung between 0.5 and 3 s from run to
# run, for every client (rclone included). Fixed thresholds keep freed buffers for reuse:
# 0.46-0.76 s over 16 runs of four clients. Only the reference server gets this.
WEBDAV_MALLOC = "glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=268435456"


def warm_page_cache(workdir: Path, mib: int = WARM_MIB) -> None:
    """Write `mib` MiB to a scratch file and delete it, just before a timed figure.

    On this benchmark machine (a VM whose free memory goes back to the host) writing 1 GiB
    into pages the kernel has not used for a few seconds cost 1.2-1.5 s of kernel time;
    into pages freed just before, 0.3 s (a plain write loop, no network; perf puts the
    difference in the page-cache copy). Which one a figure got was luck, and it decided
    the 1 GiB relay figures of every copier. Touching the pages first gives each figure the
    same start. On a machine that keeps its memory this costs a second and changes nothing.
    """
    block = b"\xa5" * (1024 * 1024)
    scratch = workdir / "warm-page-cache.tmp"
    with scratch.open("wb") as handle:
        for _ in range(mib):
            handle.write(block)
    scratch.unlink()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@functools.cache
def compile_app() -> None:
    """Write app/'s bytecode cache once, as pip does when it installs the package.

    The editable install leaves it to the first start, which writes nothing when
    PYTHONDONTWRITEBYTECODE is set; every start then compiles all of app/ (~110 ms of CPU).
    """
    compileall.compile_dir(ROOT / "app", quiet=1)


def answers(port: int, method: str, path: str) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request(method, path)
        ok = conn.getresponse().status < 500
        conn.close()
        return ok
    except OSError:
        return False


def status_bytes(pid: int, field: str) -> int:
    """A memory figure (VmRSS, VmHWM, ...) of a process from /proc, in bytes."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


class Subprocess:
    process: subprocess.Popen[bytes] | None = None

    def wait_ready(self, port: int, method: str, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not answers(port, method, path):
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not answer in time")
            time.sleep(0.005)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class RelayService(Subprocess):
    """`photo-relay serve` with a fresh data folder and one device."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = workdir / f"relay-{time.monotonic_ns()}"
        self.port = free_port()
        self.extra_env = env or {}
        self.token = ""

    def prepare(self) -> Database:
        """Create the data folder and a device; returns the database for seeding."""
        db = Database(Settings(data_dir=self.data_dir).database_path)
        self.token = new_token("prd")
        State(db).add_device("bench", hash_token(self.token))
        return db

    def start(self) -> float:
        """Start the service; returns the seconds from spawn until /healthz answered."""
        if not self.token:
            self.prepare().close()
        compile_app()
        env = {
            **os.environ,
            "PHOTO_RELAY_DATA_DIR": str(self.data_dir),
            "PHOTO_RELAY_PORT": str(self.port),
            "PHOTO_RELAY_HOST": "127.0.0.1",
            "PHOTO_RELAY_TARGET_FOLDER": HELD_TARGET,
            **self.extra_env,
        }
        log = (self.data_dir / "service.log").open("ab")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(BIN / "photo-relay"), "serve"], env=env, stdout=log, stderr=log, cwd=ROOT
        )
        self.wait_ready(self.port, "GET", "/healthz")
        return time.perf_counter() - started

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


class WebDavService(Subprocess):
    """bench/webdav_server.py (WsgiDAV on cheroot) serving a fresh folder."""

    def __init__(self, workdir: Path, *, count_requests: bool = False) -> None:
        """Keeps what it receives in a new folder in `workdir`."""
        self.root = workdir / f"webdav-{time.monotonic_ns()}"
        self.port = free_port()
        self.counts_file = workdir / f"{self.root.name}-requests.json" if count_requests else None

    def start(self) -> None:
        self.root.mkdir(parents=True)
        counts = [str(self.counts_file)] if self.counts_file else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.webdav_server", str(self.root), str(self.port), *counts],
            cwd=ROOT,
            env={**os.environ, "GLIBC_TUNABLES": WEBDAV_MALLOC},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.wait_ready(self.port, "OPTIONS", "/")

    def request_counts(self) -> dict[str, int]:
        """Requests by method, once the server has stopped (needs `count_requests`)."""
        assert self.counts_file is not None
        self.stop()
        counts: dict[str, int] = json.loads(self.counts_file.read_text())
        return counts

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        if self.counts_file is not None:
            self.counts_file.unlink(missing_ok=True)


# The two floors' modules: stdlib sockets, and the same on FastAPI and uvicorn.
NETWORK_FLOOR = "bench.floor_server"
FRAMEWORK_FLOOR = "bench.framework_floor"


class FloorService(Subprocess):
    """A floor (`NETWORK_FLOOR` or `FRAMEWORK_FLOOR`, fsync per file) receiving into a
    fresh folder."""

    def __init__(self, workdir: Path, module: str = NETWORK_FLOOR) -> None:
        self.root = workdir / f"floor-{time.monotonic_ns()}"
        self.port = free_port()
        self.module = module

    def start(self) -> None:
        self.root.mkdir(parents=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, str(self.root), str(self.port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Either answers a GET with 405 or 404: ready, and nothing is stored.
        self.wait_ready(self.port, "GET", "/")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class RssSampler:
    """Samples a process's resident memory every few milliseconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, status_bytes(self.pid, "VmRSS"))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
