"""What a failure means for an item: wait (transient), or `failed` with the fix (permanent)."""

from __future__ import annotations

from pathlib import Path

from app.errors import TargetError, TargetRejected, TargetUnavailable, VerificationFailed
from app.targets.replies import TooLarge
from tests.conftest import remote_settings, running
from tests.support import samples
from tests.support.faults import Fault
from tests.support.servers import wait_for
from tests.support.webdav_server import DavServer
from tests.targets.nextcloud.test_relay import receipt, send


def test_the_split_is_one_attribute_of_the_error_family() -> None:
    """Only TargetUnavailable and its kin are transient; a rejection and a mismatch are not."""
    assert TargetUnavailable("down").transient
    assert not TargetRejected("no").transient
    assert not TooLarge("too big").transient
    assert not VerificationFailed("differs").transient
    assert not TargetError("other").transient


def test_a_file_the_server_refuses_as_too_large_fails_at_once_with_the_fix(
    tmp_path: Path, webdav_server: DavServer
) -> None:
    """413 from a server without chunked upload: no point waiting; failed, saying what to do."""
    fault = webdav_server.faults.add(Fault("status", status=413, methods={"PUT"}))
    settings = remote_settings(tmp_path, webdav_server, relay_max_attempts=12)
    with running(settings) as service:
        with service.device() as client:
            sha = send(client, samples.jpeg(seed=140), "IMG_0001.JPG")
        wait_for(lambda: receipt(service, sha)["state"] == "failed", what="the item to fail")
        failed = receipt(service, sha)
    assert failed["attempts"] == 1 and fault.fired == 1
    assert "refuses a file this large" in failed["last_error"]
    assert "Raise the upload size limit" in failed["last_error"]
