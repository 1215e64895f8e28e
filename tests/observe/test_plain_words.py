"""What a non-developer reads says things in plain words, through a whole week in one go.

Real scenarios, not single strings: photos uploaded and relayed, NextCloud stopped (an
outage) and back, a copy that fails. Everything a person reads on the way is gathered — the
status page and item pages (their visible text), `photo-relay status` and `photo-relay
doctor`, the journal, and the `message`/`fix`/`reason` fields of JSON answers and errors —
and none may say "spool", "sha256-reread", a raw ISO 8601 time or a time "in UTC".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from app.cli.commands import main
from app.clock import iso
from app.clock import now as clock_now
from app.config import Settings
from app.observe.doctor import check_clock
from app.observe.doctor.devices import check_devices
from app.receipts import DeviceInfo
from tests.conftest import Service, remote_settings, running, sha256_hex
from tests.support import samples
from tests.support.servers import wait_for
from tests.support.status_page import (
    blocked_library_settings,
    logged_in,
    photo_from_2024,
    upload,
)
from tests.support.webdav_server import DavServer

DEVELOPER_WORDS = {
    "spool": re.compile(r"spool", re.I),
    "sha256-reread": re.compile(r"sha256-reread", re.I),
    "raw ISO time": re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d"),
    "a time in UTC": re.compile(r"\d\d:\d\d(:\d\d)?\s*UTC"),
    "a traceback": re.compile(r"Traceback \(most recent call last\)"),
}
# The JSON fields a person reads; the rest (codes, stamps, hashes) are for programs.
READ_BY_PEOPLE = {"message", "fix", "reason", "headline", "last_error", "captured_note"}


class VisibleText(HTMLParser):
    """The text a browser shows: no tags, attributes, scripts or styles."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.parts.append(data.strip())


def visible(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return "\n".join(parser.parts)


def read_by_people(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in READ_BY_PEOPLE and isinstance(inner, str):
                yield inner
            else:
                yield from read_by_people(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from read_by_people(inner)


def developer_words(where: str, text: str) -> list[str]:
    return [
        f"{where}: {name} in {text[max(0, m.start() - 60) : m.end() + 60]!r}"
        for name, pattern in DEVELOPER_WORDS.items()
        for m in pattern.finditer(text)
    ]


def everything_a_person_reads(service: Service, shas: list[str]) -> dict[str, str]:
    """Page by page, answer by answer: what the owner sees right now."""
    seen: dict[str, str] = {}
    with logged_in(service) as browser:
        seen["status page"] = visible(browser.get("/").text)
        for sha in shas:
            seen[f"item page {sha[:8]}"] = visible(browser.get(f"/items/{sha}").text)
        seen["missing item page"] = visible(browser.get(f"/items/{'0' * 64}").text)
    with service.admin() as admin:
        answers = {
            "/v1/status": admin.get("/v1/status").json(),
            "an unknown item": admin.get(f"/v1/items/{'0' * 64}").json(),
            "a wrong endpoint": admin.get("/v1/nothing").json(),
            **{f"receipt {sha[:8]}": admin.get(f"/v1/items/{sha}").json() for sha in shas},
        }
    with service.device() as phone:
        answers["a body that is not its hash"] = phone.put(
            f"/v1/blobs/{'1' * 64}", content=b"not what the name says"
        ).json()
    for name, answer in answers.items():
        seen[f"JSON {name}"] = "\n".join(read_by_people(answer))
    journal = service.server.app_services.state.db.call(
        lambda conn: conn.execute("SELECT message FROM journal").fetchall()
    )
    seen["journal"] = "\n".join(row["message"] for row in journal)
    seen.update(terminal(service.settings))
    return seen


def terminal(settings: Settings) -> dict[str, str]:
    """`photo-relay status` and `photo-relay doctor` on the service's data folder."""
    runner = CliRunner()
    said = {}
    for command in ("status", "doctor"):
        result = runner.invoke(main, [command, "--data-dir", str(settings.data_dir)])
        assert result.exception is None or isinstance(result.exception, SystemExit), result
        said[f"photo-relay {command}"] = result.output
    return said


def assert_plain(seen: dict[str, str]) -> None:
    found = [hit for where, text in seen.items() for hit in developer_words(where, text)]
    assert found == [], "\n".join(found)


def test_upload_relay_and_an_outage_are_told_in_plain_words(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """Photos relayed, NextCloud stopped with photos waiting, then back: plain words all along."""
    settings = remote_settings(
        tmp_path,
        nextcloud,
        relay_retry_base_seconds=0.01,
        relay_retry_max_seconds=0.05,
        relay_max_attempts=3,
        relay_probe_seconds=0.3,
    )
    with running(settings) as service:
        first = samples.heic(seed=70)
        upload(service, first, "IMG_0070.HEIC")
        with service.admin() as admin:
            wait_for(lambda: admin.get("/v1/status").json()["counts"]["verified"] == 1)
            nextcloud.stop()
            waiting = samples.jpeg(seed=71)
            upload(service, waiting, "IMG_0071.JPG")
            wait_for(lambda: admin.get("/v1/status").json()["relay"]["state"] == "waiting")
        shas = [sha256_hex(first), sha256_hex(waiting)]
        during = everything_a_person_reads(service, shas)
        assert "has not answered since" in during["status page"]  # the scene is the outage
        assert_plain(during)
        nextcloud.start()
        with service.admin() as admin:
            wait_for(lambda: admin.get("/v1/status").json()["counts"]["verified"] == 2)
        after = everything_a_person_reads(service, shas)
        assert "answers again" in after["journal"]
        assert_plain(after)


def test_a_copy_that_fails_is_told_in_plain_words(tmp_path: Path) -> None:
    """A photo the destination cannot take (a file in the way): failed, and said plainly."""
    settings = blocked_library_settings(tmp_path)
    with running(settings) as service:
        data = photo_from_2024(seed=72)
        upload(service, data, "IMG_0072.JPG")
        with service.admin() as admin:
            wait_for(lambda: admin.get(f"/v1/items/{sha256_hex(data)}").json()["state"] == "failed")
        seen = everything_a_person_reads(service, [sha256_hex(data)])
        assert "Could not write at the destination" in seen["status page"]
        assert_plain(seen)


def test_the_doctor_says_clocks_and_devices_in_local_words() -> None:
    """The findings a healthy week never shows (a clock that went back, a silent phone):
    their times are said like the page says them, not as UTC stamps."""
    now = clock_now()
    findings = [
        check_clock(now, now + timedelta(hours=3), None),
        check_clock(datetime(2001, 6, 1, 12, tzinfo=UTC), None, None),
        *check_devices(
            [
                DeviceInfo(
                    name="phone",
                    created_at=iso(now - timedelta(days=30)),
                    last_seen_at=iso(now - timedelta(days=10)),
                    revoked=False,
                )
            ],
            now,
            stale_days=7,
        ),
    ]
    said = {f"{n}: {c.name}": f"{c.message}\n{c.fix}" for n, c in enumerate(findings)}
    assert [c.status for c in findings] == ["fail", "fail", "warn"]
    assert "3 hours later than that: the clock went back" in said["0: clock"]
    assert re.search(r"it is \d+ (May|Jun) 2001, \d\d:\d\d,", said["1: clock"])  # local time
    assert "10 days ago" in said["2: device phone"]
    assert_plain(said)
