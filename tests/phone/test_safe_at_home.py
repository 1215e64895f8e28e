"""Issue 19: the "Safe at home" album and "Free up space", run as generated plists in the
phone-semantics interpreter against a live photo-relay and the test NextCloud.

The album may only ever hold photos whose copy at the destination is verified; adding to
it must not make a run send anything again; Free up space offers exactly the photos whose
verified copy exists *now* (Live Photos, edited photos, favourites, photos the service
cannot vouch for and a copy deleted in NextCloud by hand all stay), deletes nothing else,
and says in one sentence what it kept and why.
"""

from __future__ import annotations

import plistlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.phone.free_up import FreeUpRuns
from app.phone.shortcut import DEFAULT_ALBUM, build_backup, build_free_up
from tests.conftest import Service, make_settings, remote_settings, running, sha256_hex
from tests.support.faults import Fault
from tests.support.photo_library import NOW, Library
from tests.support.servers import wait_for
from tests.support.shortcut_interpreter import Asset, Phone, formatted_size, run_shortcut
from tests.support.status_page import logged_in
from tests.support.webdav_server import DavServer

HOME = "Home Sweet Home"


def backup(service: Service, phone: Phone) -> None:
    run_shortcut(build_backup(), phone, [service.base_url, service.device_token, HOME])


def free_up(service: Service, phone: Phone) -> None:
    run_shortcut(build_free_up(), phone, [service.base_url, service.device_token])


def receipt(service: Service, asset: Asset) -> dict[str, Any]:
    with service.device() as client:
        reply = client.get(f"/v1/items/{sha256_hex(asset.sent)}")
    return reply.json() if reply.status_code == 200 else {}


def wait_verified(service: Service, assets: list[Asset]) -> None:
    wait_for(
        lambda: all(receipt(service, a).get("state") == "verified" for a in assets),
        timeout=60,
        what="every copy to be verified at the destination",
    )


def journal(service: Service, asset: Asset) -> list[str]:
    with service.device() as client:
        entries = client.get(f"/v1/items/{sha256_hex(asset.sent)}/journal").json()
    return [f"{e['event']}: {e['message']}" for e in entries]


@contextmanager
def with_nextcloud(tmp_path: Path, nextcloud: DavServer, **overrides: object) -> Iterator[Service]:
    values: dict[str, object] = {"shortcut_batch_size": 3, "shortcut_sweep_days": 0}
    values.update(overrides)
    with running(remote_settings(tmp_path, nextcloud, **values)) as service:
        yield service


class Household:
    """An old library with the awkward cases, and a recent photo."""

    def __init__(self) -> None:
        library = Library(seed=19)
        old = NOW - timedelta(days=45)
        self.plain = [library.photo(old + timedelta(hours=h)) for h in range(3)]
        self.live = library.photo(old + timedelta(hours=4), live_video=b"the short video")
        self.edited = library.photo(old + timedelta(hours=5))
        library.edit(self.edited, old + timedelta(days=3))  # edited before its backup
        self.favourite = library.photo(old + timedelta(hours=6), favorite=True)
        self.removed_by_hand = library.photo(old + timedelta(hours=7))
        self.recent = library.photo(NOW - timedelta(days=2))
        self.library = library

    @property
    def assets(self) -> list[Asset]:
        return self.library.assets


def test_album_gets_only_verified_photos_and_nothing_is_sent_again(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """While NextCloud holds every upload, nothing joins the album; once the copies are
    verified the next run adds each photo once, and later runs send no byte again."""
    home = Household()
    held = nextcloud.faults.add(Fault("hold", methods={"PUT", "MOVE"}))
    with with_nextcloud(tmp_path, nextcloud) as service:
        phone = Phone(HOME, home.assets)
        backup(service, phone)
        assert sorted(phone.uploads()) == sorted(a.filename for a in home.assets)
        assert not phone.alerts
        assert all(receipt(service, a).get("state") != "verified" for a in home.assets)
        assert phone.album(DEFAULT_ALBUM) == []  # received is not verified

        held.released.set()
        nextcloud.faults.clear()
        wait_verified(service, home.assets)
        second = Phone(HOME, home.assets, albums={DEFAULT_ALBUM})
        backup(service, second)
        assert second.uploads() == [] and not second.alerts
        assert sorted(a.name for a in second.album(DEFAULT_ALBUM)) == sorted(
            a.name for a in home.assets
        )
        assert second.duplicates == []

        third = Phone(HOME, home.assets, albums={DEFAULT_ALBUM})
        backup(service, third)
        assert third.uploads() == [] and third.bytes_uploaded() == 0
        assert third.duplicates == [] and not third.alerts
        assert len(third.album(DEFAULT_ALBUM)) == len(home.assets)
        # Joining the album moved Last Modified Date: the next run read each photo once
        # more to hash it (same bytes, nothing sent); after that, not even that.
        hashed = [r for r in third.requests if r.url.endswith("/hash")]
        assert len(hashed) <= len(home.assets)
        fourth = Phone(HOME, home.assets, albums={DEFAULT_ALBUM})
        backup(service, fourth)
        assert [r for r in fourth.requests if r.url.endswith("/hash")] == []
        assert fourth.uploads() == []


def test_free_up_offers_exactly_the_photos_whose_verified_copy_exists_now(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """Live, edited, favourite, never-backed-up and deleted-in-NextCloud photos stay; the
    rest goes to Recently Deleted after one question; one sentence says what was kept."""
    home = Household()
    edited_later = home.library.photo(NOW - timedelta(days=44))
    with with_nextcloud(tmp_path, nextcloud) as service:
        backup(service, Phone(HOME, home.assets))
        wait_verified(service, home.assets)
        backup(service, Phone(HOME, home.assets))  # adds them to the album
        assert len([a for a in home.assets if DEFAULT_ALBUM in a.albums]) == len(home.assets)
        home.library.edit(edited_later, NOW)  # after its backup: the render is sent next
        resend = Phone(HOME, home.assets)
        backup(service, resend)
        assert resend.uploads() == [edited_later.filename]
        wait_verified(service, [edited_later])

        gone = receipt(service, home.removed_by_hand)["remote_path"]
        auth = (nextcloud.user, nextcloud.password)
        url = f"{nextcloud.files_url}/Photos/iPhone/{gone}"
        assert httpx.request("DELETE", url, auth=auth).status_code in (200, 204)
        by_hand = home.library.photo(NOW - timedelta(days=60))  # put in the album by hand
        by_hand.albums.add(DEFAULT_ALBUM)

        phone = Phone(HOME, home.assets)
        free_up(service, phone)
        assert not phone.alerts
        assert sorted(a.name for a in phone.recently_deleted) == sorted(a.name for a in home.plain)
        assert phone.delete_prompts == [3]
        kept = [home.live, home.edited, edited_later, home.favourite, home.removed_by_hand]
        kept.append(by_hand)
        assert all(a in phone.library for a in [*kept, home.recent])
        freed = formatted_size(sum(len(a.sent) for a in home.plain))
        assert phone.notifications == [
            (
                "Free up space",
                f"Freed {freed}: 3 photos removed from the phone, kept 6 (2 edited, "
                "1 Live Photo, 1 favourite, 1 not yet verified, 1 missing at the destination).",
            )
        ]
        # Nothing but the Live Photo's description was needed to keep it: never read.
        hashed = [r.url for r in phone.requests if r.url.endswith("/hash")]
        assert len(hashed) == 5  # the 3 offered, the one deleted by hand, the one by hand

        assert any(e.startswith("free_up.removed") for e in journal(service, home.plain[0]))
        kept_entry = [e for e in journal(service, home.removed_by_hand) if "free_up" in e]
        assert kept_entry and "gone or changed" in kept_entry[0], kept_entry


def test_cancelled_deletion_removes_nothing_and_claims_nothing(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """Tapping Cancel when iOS asks ends the shortcut: no photo deleted, no sentence, and
    the service records that the run removed nothing."""
    home = Household()
    with with_nextcloud(tmp_path, nextcloud) as service:
        backup(service, Phone(HOME, home.assets))
        wait_verified(service, home.assets)
        backup(service, Phone(HOME, home.assets))
        phone = Phone(HOME, home.assets, confirm_delete=False)
        free_up(service, phone)
        assert phone.delete_prompts == [4]  # the plain three and the deleted-by-hand one
        assert phone.recently_deleted == [] and phone.notifications == []
        assert all(a in phone.library for a in home.assets)
        again = Phone(HOME, home.assets)
        free_up(service, again)  # closes the cancelled run as "removed nothing"
        runs = FreeUpRuns(service.server.app_services.db).recent()
        assert [r["state"] for r in runs] == ["finished", "left"]
        assert runs[1]["message"] is None  # the cancelled run claimed nothing
        assert len(again.recently_deleted) == 4
        assert again.notifications[0][1].startswith("Freed ")


def test_favourites_are_offered_only_when_allowed(tmp_path: Path, nextcloud: DavServer) -> None:
    """With PHOTO_RELAY_SHORTCUT_FREE_UP_FAVOURITES on, a verified favourite may go too."""
    home = Household()
    with with_nextcloud(tmp_path, nextcloud, shortcut_free_up_favourites=True) as service:
        backup(service, Phone(HOME, home.assets))
        wait_verified(service, home.assets)
        backup(service, Phone(HOME, home.assets))
        phone = Phone(HOME, home.assets)
        free_up(service, phone)
        assert home.favourite in phone.recently_deleted
        assert home.live not in phone.recently_deleted


def test_without_the_album_the_backup_still_sends_everything(tmp_path: Path) -> None:
    """No "Safe at home" album on the phone: every photo is still sent and the run closed
    before Save to Photo Album fails (iOS then says the album is missing)."""
    library = Library(seed=5)
    photos = [library.photo(NOW - timedelta(days=d)) for d in (9, 8, 7)]
    with running(make_settings(tmp_path, shortcut_sweep_days=0)) as service:
        backup(service, Phone(HOME, photos))
        wait_verified(service, photos)
        phone = Phone(HOME, photos, albums=set())
        backup(service, phone)
        assert phone.notifications and phone.notifications[0][0] == "Photo backup"
        assert phone.alerts == [f"The album “{DEFAULT_ALBUM}” could not be found."]
        with service.admin() as client:
            runs = client.get("/v1/backup/runs").json()
        assert [r["state"] for r in runs] == ["finished", "finished"]


@pytest.mark.parametrize("token", ["device", "admin"])
def test_safe_to_delete_api_checks_the_destination_now(tmp_path: Path, token: str) -> None:
    """Per hash yes/no with the reason: verified and present now, never received, or its
    copy removed from the destination since (found by a fresh check, not the database)."""
    library = Library(seed=8)
    kept, removed = library.photo(NOW - timedelta(days=40)), library.photo(NOW - timedelta(days=41))
    with running(make_settings(tmp_path)) as service:
        backup(service, Phone(HOME, [kept, removed]))
        wait_verified(service, [kept, removed])
        copy = service.library / receipt(service, removed)["remote_path"]
        copy.unlink()
        never = "0" * 64
        hashes = [sha256_hex(kept.sent), sha256_hex(removed.sent), never]
        who = service.device() if token == "device" else service.admin()
        with who as client:
            reply = client.post("/v1/items/safe-to-delete", json={"sha256": hashes})
        assert reply.status_code == 200, reply.text
        answers = reply.json()["answers"]
        assert [a["safe"] for a in answers] == [True, False, False]
        assert "found there again just now" in answers[0]["reason"]
        assert "gone or changed" in answers[1]["reason"]
        assert "never received" in answers[2]["reason"]
        assert reply.json()["safe"] == 1
        with service.client() as anonymous:
            refused = anonymous.post("/v1/items/safe-to-delete", json={"sha256": hashes})
        assert refused.status_code == 401
        with service.device() as client:
            bad = client.post("/v1/items/safe-to-delete", json={"sha256": ["not-a-hash"]})
        assert bad.status_code == 422 and bad.json()["error"]["code"]


def test_old_shortcuts_never_get_home(tmp_path: Path) -> None:
    """A candidates request without `album` (a shortcut from before the album) is answered
    as before: verified photos are "safe", never "home"."""
    library = Library(seed=9)
    photo = library.photo(NOW - timedelta(days=3))
    with running(make_settings(tmp_path)) as service:
        backup(service, Phone(HOME, [photo]))
        wait_verified(service, [photo])
        candidate = {
            "name": photo.name,
            "taken": photo.taken.isoformat(),
            "modified": photo.changed_at().isoformat(),
            "size": len(photo.sent),
        }
        with service.device() as client:
            run = client.post("/v1/backup/runs", json={"kind": "backup"}).json()
            old = client.post(
                f"/v1/backup/runs/{run['run_id']}/candidates", json={"candidates": [candidate]}
            ).json()
            new = client.post(
                f"/v1/backup/runs/{run['run_id']}/candidates",
                json={"candidates": [candidate], "album": DEFAULT_ALBUM},
            ).json()
        assert old["decisions"] == {"1": "safe"} and old["album"] == "no"
        assert new["decisions"] == {"1": "home"} and new["album"] == "yes"


def test_ledger_says_what_was_not_captured(tmp_path: Path) -> None:
    """A Live Photo and an edited photo are listed on the status page in plain words, and an
    edit made after the backup is recorded as an edit, not a guess."""
    library = Library(seed=11)
    live = library.photo(NOW - timedelta(days=5), live_video=b"video")
    later = library.photo(NOW - timedelta(days=4))
    plain = library.photo(NOW - timedelta(days=3))
    with running(make_settings(tmp_path, shortcut_sweep_days=0)) as service:
        backup(service, Phone(HOME, library.assets))
        library.edit(later, NOW - timedelta(hours=1))
        backup(service, Phone(HOME, library.assets))
        with logged_in(service) as browser:
            page = browser.get("/").text
        section = page.split('id="not-captured"', 1)[1].split("</section>", 1)[0]
        assert "Live Photo: still only" in section and live.name in section
        assert "edited on the phone: the edited version" in section and later.name in section
        assert plain.name not in section
        assert any("not in full: Live Photo: still only" in e for e in journal(service, live))


def test_served_shortcuts_carry_the_configured_album(tmp_path: Path) -> None:
    """The install page offers Free up space; the files it serves use the album setting."""
    settings = make_settings(tmp_path, shortcut_safe_album="Backed up")
    with running(settings) as service, service.client() as client:
        page = client.get("/shortcuts/").text
        assert "Free%20up%20space.shortcut" in page and "Backed up" in page
        for name in ("Free%20up%20space.shortcut", "Back%20up%20to%20photo-relay.shortcut"):
            served = plistlib.loads(client.get(f"/shortcuts/{name}").content)
            text = plistlib.dumps(served).decode()
            assert "Backed up" in text and DEFAULT_ALBUM not in text
