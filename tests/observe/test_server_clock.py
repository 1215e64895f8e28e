"""doctor's clock check sees the WebDAV/NextCloud server's time (its `Date` header)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.observe.doctor.clock import check_clock
from app.observe.doctor.destination import check_destination
from tests.support.webdav_server import DavServer
from tests.targets.test_dav_target import target_for


@pytest.mark.parametrize("kind", ["nextcloud", "webdav"])
def test_server_time_comes_from_the_date_header_and_a_skew_is_reported(
    tmp_path: Path, nextcloud: DavServer, webdav_server: DavServer, kind: str
) -> None:
    """A server whose Date is 40 minutes behind: doctor gets that time and warns."""
    server = nextcloud if kind == "nextcloud" else webdav_server
    server.faults.clock_skew = timedelta(minutes=-40)
    target = target_for(tmp_path, server)

    async def check() -> datetime | None:
        try:
            await target.ensure_folder("")  # the destination folder of a fresh server
            result, server_time = await check_destination(target)
            assert result.status == "ok", result.message
            return server_time
        finally:
            await target.close()

    server_time = asyncio.run(check())
    ours = datetime.now(UTC)
    assert server_time is not None
    assert abs(server_time - (ours - timedelta(minutes=40))) < timedelta(seconds=10)
    clock = check_clock(ours, None, server_time)
    assert clock.status == "warn"
    assert re.search(r"differ by (39|40) minutes", clock.message), clock.message


def test_server_time_of_an_unreachable_server_is_unknown(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """No answer means no server time (the clock check then skips the comparison)."""
    target = target_for(tmp_path, nextcloud)
    nextcloud.stop()
    assert asyncio.run(target.server_time()) is None
