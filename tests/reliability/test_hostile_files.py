"""Hostile files with a device token: each costs at most a few tens of MB and a few seconds.

The service runs as `photo-relay serve`; its peak resident memory (VmHWM from /proc) is
compared with its memory before the attack, while a probe asks /healthz and uploads a small
photo every 50 ms. The files: a 0.5 MB PNG claiming 13000x13000 pixels (uploaded, then its
thumbnail asked by six page loads at once), a movie of two million empty atoms, 32 MiB
with HEIC's magic bytes, and a form of endless small text fields. A quiet run of the same
probe gives the baseline the figures in docs/RELIABILITY.md stand beside.
"""

from __future__ import annotations

import hashlib
import struct
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import add_device
from tests.reliability.harness import Tally
from tests.reliability.hostile import HealthProbe, memory_mb, upload_with
from tests.support.hostile_files import atom_bomb_movie, pixel_bomb_png
from tests.support.servers import ServiceProcess, find_free_port

pytestmark = pytest.mark.reliability

EXTRA_MB = 60  # "a few tens of MB" over the memory before the attack
RSS_LIMIT_MB = 300
ANSWER_WITHIN_S = 1.0


class Target:
    def __init__(self, process: ServiceProcess, token: str, admin: str) -> None:
        self.process, self.token, self.admin = process, token, admin
        assert process.process is not None
        self.pid = process.process.pid

    def device(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.process.base_url, headers=headers, timeout=60)


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    data_dir = tmp_path / "data"
    token = add_device(data_dir, "phone")
    process = ServiceProcess(
        data_dir, find_free_port(), {"PHOTO_RELAY_TARGET_FOLDER": str(tmp_path / "library")}
    )
    with process.running():
        yield Target(process, token, (data_dir / "admin-token").read_text().strip())


def put(client: httpx.Client, data: bytes, name: str) -> httpx.Response:
    return client.put(
        f"/v1/blobs/{hashlib.sha256(data).hexdigest()}",
        content=data,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def measured(target: Target, tally: Tally, attack: object) -> None:
    """Run `attack` under the probe; check and report its time, memory and the probe."""
    httpx.get(target.process.base_url + "/healthz")  # warm: imports done before the baseline
    with target.device() as client:
        put(client, b"warm-up " * 1000, "warm.jpg")
    before = memory_mb(target.pid)
    started = time.monotonic()
    with HealthProbe(target.process.base_url, upload_with(target.token)) as probe:
        attack()  # type: ignore[operator]
    seconds = time.monotonic() - started
    peak = memory_mb(target.pid, "VmHWM")
    assert not probe.failures, probe.failures[:5]
    assert probe.slowest < ANSWER_WITHIN_S, f"slowest answer {probe.slowest:.2f}s"
    assert peak - before < EXTRA_MB, f"{peak - before:.0f} MB over the {before:.0f} MB before"
    assert peak < RSS_LIMIT_MB
    tally.add("attack_seconds", round(seconds, 2))
    tally.add("rss_before_mb", round(before))
    tally.add("rss_peak_mb", round(peak))
    tally.add("health_and_upload_slowest_ms", round(probe.slowest * 1000))
    tally.report()


def test_quiet_baseline(target: Target) -> None:
    """The same probe for two seconds with no attack: the figures the attacks are read against."""
    measured(target, Tally("hostile-quiet-baseline"), lambda: time.sleep(2))


def test_pixel_bomb_png_upload_and_six_thumbnail_loads(target: Target) -> None:
    """Stored with 201; six concurrent thumbnail requests answer the icon; memory stays flat."""
    data = pixel_bomb_png()
    sha = hashlib.sha256(data).hexdigest()

    def attack() -> None:
        with target.device() as client:
            assert put(client, data, "bomb.png").status_code == 201
        with httpx.Client(base_url=target.process.base_url, timeout=60) as page:
            assert page.post("/login", data={"token": target.admin}).status_code in (200, 303)
            cookies = page.cookies
        with ThreadPoolExecutor(6) as pool:
            replies = list(
                pool.map(
                    lambda _: httpx.get(
                        f"{target.process.base_url}/thumbnails/{sha}.jpg",
                        cookies=cookies,
                        timeout=60,
                    ),
                    range(6),
                )
            )
        assert [r.status_code for r in replies] == [200] * 6
        assert all(r.headers["content-type"].startswith("image/svg") for r in replies)

    measured(target, Tally("hostile-pixel-bomb"), attack)


def test_movie_of_two_million_empty_atoms(target: Target) -> None:
    """16 MB of empty atoms: stored with 201 and the fallback date, in seconds, not a minute."""
    data = atom_bomb_movie()

    def attack() -> None:
        with target.device() as client:
            reply = put(client, data, "bomb.mov")
        assert reply.status_code == 201, reply.text
        assert reply.json()["captured_source"] == "fallback"

    measured(target, Tally("hostile-atom-bomb"), attack)


def test_32_mib_with_heic_magic(target: Target) -> None:
    """A large file that claims to be HEIC is stored; its metadata read costs no more memory."""
    ftyp = struct.pack(">I4s4sI4s4s", 24, b"ftyp", b"heic", 0, b"mif1", b"heic")
    data = ftyp + struct.pack(">I4s", 0, b"mdat") + bytes(32 << 20)

    def attack() -> None:
        with target.device() as client:
            reply = put(client, data, "huge.heic")
        assert reply.status_code == 201, reply.text

    measured(target, Tally("hostile-fake-heic"), attack)


def test_form_of_endless_small_text_fields(target: Target) -> None:
    """A form that would be 520 MB of `name` fields is refused early; memory does not follow."""
    boundary = "b0undary"
    field = f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n'.encode()

    declared = 520 << 20

    def body() -> Iterator[bytes]:
        left, block = declared, field * 1000
        while left > 0:
            yield block[:left]  # exactly the declared length, never more
            left -= len(block)

    def attack() -> None:
        with target.device() as client:
            try:
                reply = client.post(
                    "/v1/uploads",
                    content=body(),
                    headers={
                        "Content-Type": f"multipart/form-data; boundary={boundary}",
                        "Content-Length": str(declared),
                    },
                )
                assert reply.status_code == 413, reply.text
            except httpx.TransportError:
                pass  # the server answered and closed before the client stopped writing

    measured(target, Tally("hostile-form-fields"), attack)
