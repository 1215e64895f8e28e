"""The NextCloud target on a server with an OCS side: user id, forbidden names, `check`."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from app.naming import NameRules, conform_path
from app.targets.nextcloud.credentials import NextcloudCredentials, save_credentials
from tests.conftest import running
from tests.support import samples
from tests.support.photo_relay_cli import run_cli
from tests.support.webdav_server import DavServer
from tests.targets.nextcloud.test_relay import FOLDER, remote_settings, send, wait_verified
from tests.targets.test_dav_target import put, run, source, target_for

LOGIN = "alice@example.org"


# The test NextCloud with its OCS side, and a login (an e-mail address) other than the uid.
pytestmark = pytest.mark.nextcloud(ocs=True, login=LOGIN)


@pytest.mark.parametrize("source_of_login", ["environment", "credentials file"])
def test_an_email_login_writes_to_the_user_ids_folder(
    tmp_path: Path, nextcloud: DavServer, source_of_login: str
) -> None:
    """With an e-mail login the target uses /remote.php/dav/files/<uid>/, never the e-mail."""
    file, data, sha = source(tmp_path, 3000)
    if source_of_login == "environment":
        target = target_for(tmp_path, nextcloud, target_user=LOGIN)
    else:
        credentials = NextcloudCredentials(
            server=nextcloud.base_url,
            login_name=LOGIN,
            app_password=SecretStr(nextcloud.password),
            user_id=nextcloud.user,
        )
        save_credentials(tmp_path / "data" / "nextcloud-credentials.json", credentials)
        target = target_for(tmp_path, nextcloud, target_user=None, target_password=None)
    run(put(target, "2024/05/IMG_0001.JPG", file, sha))
    assert nextcloud.all_files() == {f"{FOLDER}/IMG_0001.JPG": data}
    dav_paths = [p for _, p in nextcloud.faults.requests if p.startswith("/remote.php/dav/files/")]
    assert dav_paths and all(p.startswith("/remote.php/dav/files/alice/") for p in dav_paths)


def test_check_goes_through_the_nextcloud_target_and_says_what_the_relay_does(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """With the nextcloud target set, check probes through it (temp name + MOVE), no fallback."""
    env = {
        "PHOTO_RELAY_TARGET": "nextcloud",
        "PHOTO_RELAY_TARGET_URL": nextcloud.base_url,
        "PHOTO_RELAY_TARGET_USER": LOGIN,
        "PHOTO_RELAY_TARGET_PASSWORD": nextcloud.password,
        "PHOTO_RELAY_TARGET_FOLDER": "/Photos/iPhone",
        "PHOTO_RELAY_TARGET_CHUNK_THRESHOLD_BYTES": str(20 * 1024**2),
        "PHOTO_RELAY_TARGET_CHUNK_BYTES": str(5 * 1024**2),
    }
    result = run_cli(tmp_path / "data", "nextcloud", "check", env=env)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert f"Login {LOGIN!r} accepted (user id 'alice')" in out
    assert "Destination: the folder /Photos/iPhone on NextCloud" in out
    assert "Write probe: wrote, verified (by the server's SHA-256) and removed" in out
    assert "not the relay's own target" not in out
    assert "Files over 20 MB go in 5 MB chunks" in out
    assert "Content is verified by the server's SHA-256; nothing is downloaded again." in out
    requests = nextcloud.faults.requests
    temp_puts = [
        p for m, p in requests if m == "PUT" and "/.photo-relay-upload-" in p and "trial" not in p
    ]
    assert len(temp_puts) == 1 and temp_puts[0].startswith("/remote.php/dav/files/alice/Photos/")
    assert any(m == "MOVE" for m, _ in requests), "the target's temp-name-then-MOVE was not used"
    assert nextcloud.all_files() == {}, "the probe file was left behind"
    assert nextcloud.password not in out + result.stderr


def test_forbidden_names_from_capabilities_are_applied_when_naming(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """Rules the server publishes (characters, basenames, extensions) rename; nothing is refused."""
    nextcloud.ocs.forbidden_characters = [":", "?"]
    nextcloud.ocs.forbidden_basenames = ["con"]
    nextcloud.ocs.forbidden_extensions = [".part", ".filepart", ".jpeg"]
    photos = {name: samples.jpeg(seed=90 + i) for i, name in enumerate(["a:b?.JPG", "CON.JPG"])}
    photos["IMG_0002.jpeg"] = samples.jpeg(seed=99)
    settings = remote_settings(tmp_path, nextcloud, target_user=LOGIN)
    with running(settings) as service:
        with service.device() as client:
            hashes = [send(client, data, name) for name, data in photos.items()]
        done = wait_verified(service, *hashes)
        with service.device() as client:
            journal = client.get(f"/v1/items/{hashes[0]}/journal").json()
    assert "renamed to follow the server's rules for names" in journal[-1]["message"]
    assert [r["remote_path"] for r in done] == [
        "2024/05/a_b_.JPG",
        "2024/05/CON_.JPG",
        "2024/05/IMG_0002.jpeg_",
    ]
    assert nextcloud.all_files() == {
        f"{FOLDER}/a_b_.JPG": photos["a:b?.JPG"],
        f"{FOLDER}/CON_.JPG": photos["CON.JPG"],
        f"{FOLDER}/IMG_0002.jpeg_": photos["IMG_0002.jpeg"],
    }


def test_conform_path_changes_only_what_the_rules_forbid() -> None:
    """Pure naming: characters replaced, `_` after a forbidden basename, ending or name."""
    rules = NameRules(
        names=(".htaccess",), basenames=("con", "aux"), characters=(":",), extensions=(".part",)
    )
    assert conform_path("2024/05/IMG_0001.JPG", rules) == "2024/05/IMG_0001.JPG"
    assert conform_path("2024/05/a:b.JPG", rules) == "2024/05/a_b.JPG"
    assert conform_path("x/Aux.tar.gz", rules) == "x/Aux_.tar.gz"
    assert conform_path("x/console.jpg", rules) == "x/console.jpg"
    assert conform_path("x/v.PART", rules) == "x/v.PART_"
    assert conform_path("x/.HTACCESS", rules) == "x/.HTACCESS_"
    assert conform_path("x/a:b.JPG", None) == "x/a:b.JPG"
