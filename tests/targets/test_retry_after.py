"""Retry-After on 429/503 is honoured, and NextCloud's maintenance mode is a pause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from app.errors import TargetMaintenance, TargetUnavailable
from tests.conftest import running
from tests.support import samples
from tests.support.faults import Fault
from tests.support.servers import wait_for
from tests.support.webdav_server import DavServer
from tests.targets.nextcloud.test_relay import receipt, remote_settings, send, wait_verified
from tests.targets.test_dav_target import put, run, source, target_for

MAINTENANCE = "System in maintenance mode."


@pytest.mark.parametrize(("status", "form"), [(429, "seconds"), (503, "date")])
def test_retry_after_is_read_in_both_forms(
    tmp_path: Path, nextcloud: DavServer, status: int, form: str
) -> None:
    """Retry-After as seconds or as an HTTP date becomes the error's retry_after."""
    value = "120"
    if form == "date":
        value = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    nextcloud.faults.add(
        Fault("status", status=status, methods={"PUT"}, headers={"Retry-After": value})
    )
    file, _, sha = source(tmp_path, 1000)
    with pytest.raises(TargetUnavailable) as raised:
        run(put(target_for(tmp_path, nextcloud), "a/IMG.JPG", file, sha))
    assert not isinstance(raised.value, TargetMaintenance)
    assert raised.value.retry_after is not None
    assert 110 <= raised.value.retry_after <= 120


def test_next_attempt_is_not_earlier_than_retry_after(tmp_path: Path, nextcloud: DavServer) -> None:
    """A 429 asking for 60 s schedules the next attempt at least 60 s later (cap allowing)."""
    nextcloud.faults.add(
        Fault("status", status=429, methods={"PUT"}, headers={"Retry-After": "60"})
    )
    settings = remote_settings(tmp_path, nextcloud, relay_retry_max_seconds=3600)
    with running(settings) as service:
        with service.device() as client:
            sent_at = datetime.now(UTC)
            sha = send(client, samples.jpeg(seed=80), "IMG_0001.JPG")
        wait_for(lambda: receipt(service, sha)["state"] == "retry", what="a scheduled retry")
        at = datetime.fromisoformat(receipt(service, sha)["next_attempt_at"])
    assert at - sent_at >= timedelta(seconds=59)
    assert at - sent_at <= timedelta(seconds=90)


def test_retry_after_is_capped_by_the_longest_delay_setting(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """A Retry-After of an hour waits no longer than relay_retry_max_seconds (here 0.5 s)."""
    nextcloud.faults.add(
        Fault("status", status=503, methods={"PUT"}, times=1, headers={"Retry-After": "3600"})
    )
    with running(remote_settings(tmp_path, nextcloud)) as service:
        with service.device() as client:
            sha = send(client, samples.jpeg(seed=81), "IMG_0001.JPG")
        (done,) = wait_verified(service, sha, timeout=15)
    assert done["attempts"] == 2


def test_maintenance_mode_pauses_without_using_up_attempts(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """Sabre's maintenance 503, more often than max attempts: paused, then delivered anyway."""
    fault = nextcloud.faults.add(
        Fault("status", status=503, methods={"PUT"}, times=3, message=MAINTENANCE)
    )
    settings = remote_settings(tmp_path, nextcloud, relay_max_attempts=2)
    with running(settings) as service:
        with service.device() as client:
            sha = send(client, samples.jpeg(seed=82), "IMG_0001.JPG")
        (done,) = wait_verified(service, sha, timeout=20)
        state = service.server.app_services.state
        assert state.last_event_id("relay.paused") > 0
    assert fault.fired == 3
    assert done["attempts"] == 1


@pytest.mark.nextcloud(ocs=True)
def test_a_bare_503_counts_as_maintenance_when_status_php_says_so(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """A proxy's 503 without Sabre's message is maintenance only if status.php says so."""
    nextcloud.faults.add(Fault("status", status=503, methods={"PUT"}, times=2))
    file, _, sha = source(tmp_path, 1000)
    nextcloud.ocs.maintenance = True
    with pytest.raises(TargetMaintenance) as raised:
        run(put(target_for(tmp_path, nextcloud), "a/IMG.JPG", file, sha))
    assert "NextCloud is in maintenance mode" in raised.value.message
    nextcloud.ocs.maintenance = False
    with pytest.raises(TargetUnavailable) as again:
        run(put(target_for(tmp_path, nextcloud), "a/IMG.JPG", file, sha))
    assert not isinstance(again.value, TargetMaintenance)
