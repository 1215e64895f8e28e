"""`nextcloud login URL --person NAME` (issue 18): each person grants their own app password,
kept in a file of theirs (0600, never printed), and their photos land in their NextCloud."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from app.cli.commands import main
from app.store.db import Database
from app.store.people import People, nextcloud_credentials_file
from app.store.state import State
from app.tokens import hash_token, new_token
from tests.conftest import make_settings, running
from tests.relay.test_people import TAKEN, wait_verified
from tests.support.servers import wait_for
from tests.support.webdav_server import DavServer
from tests.targets.nextcloud.test_relay import send

pytestmark = pytest.mark.nextcloud(ocs=True)
FAST = ("--poll-interval", "0.05")


def test_a_persons_own_nextcloud_login_becomes_their_destination(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """Anna logs in to her NextCloud by Login Flow v2; the configured destination stays as
    it is, her photo lands verified in her /Photos/iPhone there."""
    settings = make_settings(tmp_path)
    db = Database(settings.database_path)
    try:
        People(db).add_person("anna")
        token = new_token("prd")
        State(db).add_device(
            "anna-iphone", hash_token(token), person_id=People(db).person_id("anna")
        )
    finally:
        db.close()
    results: list[Result] = []
    login = threading.Thread(
        target=lambda: results.append(
            CliRunner().invoke(
                main,
                [*("nextcloud", "login", nextcloud.base_url, "--person", "anna"), *FAST],
                env={"PHOTO_RELAY_DATA_DIR": str(settings.data_dir)},
            )
        )
    )
    login.start()
    wait_for(nextcloud.ocs.pending_flows, what="the login command to start a login flow")
    nextcloud.ocs.grant(nextcloud.login, app_password=nextcloud.password)
    login.join(timeout=60)
    [result] = results
    assert result.exit_code == 0, result.output
    assert nextcloud.password not in result.output
    secret = nextcloud_credentials_file(settings.data_dir, "anna")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert not settings.credentials_file.exists()  # the installation's own login untouched
    with running(settings) as service:
        with service.client(token) as client:
            sha = send(client, b"anna in her cloud", "IMG_0300.JPG", TAKEN)
        done = wait_verified(service, sha)
        assert [d["destination"] for d in done["deliveries"]] == [2]
    assert nextcloud.all_files() == {"Photos/iPhone/2024/05/IMG_0300.JPG": b"anna in her cloud"}
