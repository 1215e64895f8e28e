"""Two people, two phones each (issue 18): each photo reaches its senders' destinations.

Anna's photos go to her WebDAV server and the shared disk, Ben's to his WebDAV server and
the same shared disk; real WebDAV servers, the relay running, one worker per destination.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import Settings
from app.store.db import Database
from app.store.people import People
from app.store.state import State
from app.tokens import hash_token, new_token
from tests.cli.test_cli import photo_relay_in_process
from tests.conftest import Service, make_settings, running
from tests.support.servers import wait_for
from tests.support.webdav_server import DavServer
from tests.targets.nextcloud.test_relay import send

TAKEN = "2024-05-01T10:00:00+02:00"


@dataclass
class Household:
    anna: list[str]  # device tokens
    ben: list[str]
    shared: Path


def household(settings: Settings, anna_dav: DavServer, ben_dav: DavServer) -> Household:
    """Anna and Ben, two phones each, each with their own server and the shared disk."""
    shared = settings.data_dir.parent / "shared-disk"
    shared.mkdir(parents=True)
    db = Database(settings.database_path)
    try:
        people, state = People(db), State(db)
        tokens: dict[str, list[str]] = {}
        for name, server in (("anna", anna_dav), ("ben", ben_dav)):
            person = people.add_person(name)
            people.add_destination(
                name,
                "webdav",
                server.files_url,
                server.user,
                password=server.password,
                data_dir=settings.data_dir,
            )
            # The shared disk, each person's photos in their own folder (own template).
            people.add_destination(
                name, "local", str(shared), path_template=f"{name}/{{year}}/{{name}}"
            )
            tokens[name] = []
            for phone in ("iphone", "ipad"):
                token = new_token("prd")
                state.add_device(f"{name}-{phone}", hash_token(token), person_id=person.id)
                tokens[name].append(token)
    finally:
        db.close()
    return Household(tokens["anna"], tokens["ben"], shared)


@contextmanager
def servers(tmp_path: Path) -> Iterator[tuple[DavServer, DavServer]]:
    anna = DavServer(tmp_path / "anna-dav", nextcloud=False).start()
    ben = DavServer(tmp_path / "ben-dav", user="ben", password="ben-pass", nextcloud=False)
    ben.start()
    try:
        yield anna, ben
    finally:
        anna.stop()
        ben.stop()


def receipt(service: Service, token: str, sha: str) -> tuple[int, dict[str, Any]]:
    with service.client(token) as client:
        response = client.get(f"/v1/items/{sha}")
        return response.status_code, response.json()


def wait_verified(service: Service, sha: str, timeout: float = 30) -> dict[str, Any]:
    def verified() -> dict[str, Any] | None:
        with service.admin() as client:
            body: dict[str, Any] = client.get(f"/v1/items/{sha}").json()
        return body if body["state"] == "verified" else None

    result: dict[str, Any] = wait_for(verified, timeout=timeout, what="verified everywhere")
    return result


def test_each_photo_reaches_the_destinations_of_everyone_who_sent_it(tmp_path: Path) -> None:
    """An Anna-only photo lands verified at Anna's server and the shared disk, not Ben's;
    a photo both send is stored once and verified at all of them; a repeat changes nothing."""
    with servers(tmp_path) as (anna_dav, ben_dav):
        settings = make_settings(tmp_path)
        home = household(settings, anna_dav, ben_dav)
        with running(settings) as service:
            with service.client(home.anna[0]) as client:
                only_anna = send(client, b"anna's photo", "IMG_0001.JPG", TAKEN)
            with service.client(home.anna[1]) as client:
                both = send(client, b"a photo both have", "IMG_0002.JPG", TAKEN)
            with service.client(home.ben[0]) as client:
                again = client.put(
                    f"/v1/blobs/{both}",
                    params={"name": "IMG_0002.JPG"},
                    content=b"a photo both have",
                    headers={"X-Captured-At": TAKEN},
                )
            assert again.status_code == 200  # known content: stored once

            anna_receipt = wait_verified(service, only_anna)
            shared_receipt = wait_verified(service, both)

            assert len(anna_receipt["deliveries"]) == 2
            assert [d["state"] for d in anna_receipt["deliveries"]] == ["verified"] * 2
            assert [(s["person"], s["device"]) for s in anna_receipt["senders"]] == [
                ("anna", "anna-iphone")
            ]
            # Anna's server, her shared disk, Ben's server, his shared disk (the same one)
            assert [d["state"] for d in shared_receipt["deliveries"]] == ["verified"] * 4
            assert {(s["person"], s["device"]) for s in shared_receipt["senders"]} == {
                ("anna", "anna-ipad"),
                ("ben", "ben-iphone"),
            }
            anna_files = set(anna_dav.all_files().values())
            ben_files = set(ben_dav.all_files().values())
            assert anna_files == {b"anna's photo", b"a photo both have"}
            assert ben_files == {b"a photo both have"}  # never Anna's own photo
            disk = {
                str(p.relative_to(home.shared)): p.read_bytes()
                for p in home.shared.rglob("*")
                if p.is_file()
            }
            assert disk == {
                "anna/2024/IMG_0001.JPG": b"anna's photo",
                "anna/2024/IMG_0002.JPG": b"a photo both have",
                "ben/2024/IMG_0002.JPG": b"a photo both have",
            }
            # The servers' destinations follow the settings' template.
            assert set(anna_dav.all_files()) == {"2024/05/IMG_0001.JPG", "2024/05/IMG_0002.JPG"}
            with service.admin() as client:
                assert client.get("/v1/status").json()["total_items"] == 2
                page = client.get(f"/items/{both}").text  # the item page: every delivery
            assert page.count('<li class="state-verified">') == 4
            assert anna_dav.files_url in page and ben_dav.files_url in page
            assert "anna (anna-ipad)" in page and "ben (ben-iphone)" in page

            # The same person sending it again changes nothing.
            with service.client(home.ben[1]) as client:
                repeat = client.put(
                    f"/v1/blobs/{both}",
                    params={"name": "IMG_0002.JPG"},
                    content=b"a photo both have",
                    headers={"X-Captured-At": TAKEN},
                )
            assert repeat.status_code == 200
            status, after = receipt(service, home.ben[1], both)
            assert status == 200
            assert after["deliveries"] == shared_receipt["deliveries"]
            assert len(after["senders"]) == 3  # the second phone is named, no new delivery


def test_a_device_reads_only_its_own_persons_items(tmp_path: Path) -> None:
    """Ben's phones cannot read Anna's receipt or journal, nor learn through the check,
    safe-to-delete or the backup conversation that her photo is here; the admin can."""
    with servers(tmp_path) as (anna_dav, ben_dav):
        settings = make_settings(tmp_path)
        home = household(settings, anna_dav, ben_dav)
        with running(settings) as service:
            with service.client(home.anna[0]) as client:
                annas = send(client, b"anna's private photo", "IMG_0200.JPG", TAKEN)
            wait_verified(service, annas)
            assert receipt(service, home.anna[1], annas)[0] == 200  # her other phone
            with service.client(home.ben[0]) as ben:
                unknown = ben.get(f"/v1/items/{annas}")
                assert unknown.status_code == 404
                assert unknown.json()["error"]["code"] == "unknown_item"
                assert ben.head(f"/v1/items/{annas}").status_code == 404
                assert ben.get(f"/v1/items/{annas}/journal").status_code == 404
                checked = ben.post("/v1/items/check", json={"sha256": [annas]}).json()
                assert checked == {"known": {}, "missing": [annas]}
                safe = ben.post("/v1/items/safe-to-delete", json={"sha256": [annas]}).json()
                assert safe["safe"] == 0
                assert "never received" in safe["answers"][0]["reason"]
            with service.admin() as admin:
                assert admin.get(f"/v1/items/{annas}").status_code == 200
                known = admin.post("/v1/items/check", json={"sha256": [annas]}).json()
                assert known["known"] == {annas: "verified"}
            with service.client(home.anna[0]) as anna:
                mine = anna.post("/v1/items/safe-to-delete", json={"sha256": [annas]}).json()
                assert mine["safe"] == 1


def test_a_destination_that_is_down_delays_only_its_own_deliveries(tmp_path: Path) -> None:
    """Ben's server stopped: his photo waits for it (nothing lost, nothing failed) while
    the same photo's other deliveries and Anna's photos are verified; when it is back,
    his delivery is verified too."""
    with servers(tmp_path) as (anna_dav, ben_dav):
        settings = make_settings(tmp_path)
        home = household(settings, anna_dav, ben_dav)
        ben_dav.stop()
        with running(settings) as service:
            with service.client(home.ben[0]) as client:
                bens = send(client, b"ben's photo", "IMG_0100.JPG", TAKEN)
            with service.client(home.anna[0]) as client:
                annas = send(client, b"anna's during ben's outage", "IMG_0101.JPG", TAKEN)
            wait_verified(service, annas)

            def shared_copy_done() -> dict[str, Any] | None:
                _, body = receipt(service, home.ben[0], bens)
                states = [d["state"] for d in body["deliveries"]]
                return body if "verified" in states and body["attempts"] >= 1 else None

            waiting = wait_for(shared_copy_done, timeout=30, what="the shared disk's copy")
            assert waiting["state"] in ("retry", "relaying", "received")
            assert "failed" not in [d["state"] for d in waiting["deliveries"]]
            assert ben_dav.all_files() == {}

            # Destinations in the order `household` added them: 1 the settings' own, then
            # Anna's server and disk, Ben's server and disk.
            anna_server, ben_server = 2, 4

            def relays() -> dict[int, dict[str, Any]] | None:
                with service.admin() as admin:
                    status = admin.get("/v1/status").json()
                rows = {d["destination"]: d for d in status["destinations"]}
                return rows if rows[ben_server]["relay"] == "waiting" else None

            rows = wait_for(relays, timeout=30, what="Ben's server marked down")
            assert ben_dav.files_url in rows[ben_server]["target"]
            assert (rows[anna_server]["person"], rows[ben_server]["person"]) == ("anna", "ben")
            assert rows[anna_server]["relay"] == rows[1]["relay"] == "running"
            with service.admin() as admin:  # the headline is the configured destination's
                assert admin.get("/v1/status").json()["relay"]["down_since"] is None
                page = admin.get("/").text  # the status page: a line per destination
            assert page.count("<li data-destination=") == 5
            assert '<li data-destination="4"><strong>ben</strong>' in page
            assert "(waiting)" in page and "1 verified" in page
            assert rows[anna_server]["counts"]["verified"] == 1
            assert rows[ben_server]["counts"]["verified"] == 0

            with service.admin() as admin:
                scrape = admin.get("/metrics").text
            assert 'photo_relay_deliveries{destination="2",state="verified"} 1.0' in scrape
            assert 'photo_relay_deliveries{destination="4",state="verified"} 0.0' in scrape

            ben_dav.start()
            done = wait_verified(service, bens)
            assert [d["state"] for d in done["deliveries"]] == ["verified", "verified"]
            assert set(ben_dav.all_files().values()) == {b"ben's photo"}


def test_status_counts_each_persons_deliveries_destinations_and_backups(tmp_path: Path) -> None:
    """`/v1/status` and `photo-relay status` say, per person, how many of their copies are
    in each state, how their destinations are, and when each of their phones last sent."""
    with servers(tmp_path) as (anna_dav, ben_dav):
        settings = make_settings(tmp_path)
        home = household(settings, anna_dav, ben_dav)
        with running(settings) as service:
            with service.client(home.anna[0]) as client:
                only_anna = send(client, b"anna's own photo", "IMG_0001.JPG", TAKEN)
                both = send(client, b"a photo both have", "IMG_0002.JPG", TAKEN)
            with service.client(home.ben[1]) as client:
                assert (
                    client.put(
                        f"/v1/blobs/{both}",
                        params={"name": "IMG_0002.JPG"},
                        content=b"a photo both have",
                        headers={"X-Captured-At": TAKEN},
                    ).status_code
                    == 200
                )
            wait_verified(service, only_anna)
            wait_verified(service, both)
            with service.admin() as client:
                status = client.get("/v1/status").json()
                page = client.get("/").text
                destination_of = {d["destination"]: d for d in status["destinations"]}

                def scraped() -> str | None:
                    text: str = client.get("/metrics").text
                    return text if sum(_verified_per_destination(text).values()) == 6 else None

                metrics = wait_for(scraped, timeout=10, what="a count per destination")
            cli = photo_relay_in_process("status", data_dir=settings.data_dir)

    people = {p["name"]: p for p in status["people"]}
    assert set(people) == {"me", "anna", "ben"}
    anna, ben = people["anna"], people["ben"]
    # Anna: two photos to each of her two destinations; Ben: the shared one to his two.
    assert anna["counts"]["verified"] == 4 and sum(anna["counts"].values()) == 4
    assert ben["counts"]["verified"] == 2 and sum(ben["counts"].values()) == 2
    assert sum(people["me"]["counts"].values()) == 0
    mine = {d["destination"] for d in status["destinations"] if d["person"] == "anna"}
    assert {d["destination"] for d in anna["destinations"]} == mine and len(mine) == 2
    assert all(d["relay"] != "not running" for d in anna["destinations"])
    assert anna["last_backup"]["anna-iphone"] is not None
    assert anna["last_backup"]["anna-ipad"] is None  # it sent nothing
    assert ben["last_backup"]["ben-ipad"] is not None  # a file Anna sent first still counts
    assert ben["last_backup"]["ben-iphone"] is None

    assert cli.exit_code == 0, cli.output
    block = cli.output.split("People:\n", 1)[1]
    assert "  anna: 4 verified (2 destination(s))" in block
    assert "  ben: 2 verified (2 destination(s))" in block
    assert "    ben-iphone: last backup never" in block

    # Each copy counted once, at the destination it went to; the settings' one got none.
    verified = _verified_per_destination(metrics)
    assert set(verified) == set(destination_of)
    for number, verified_here in verified.items():
        assert verified_here == destination_of[number]["counts"]["verified"]
    assert sum(verified.values()) == 6
    assert 'photo_relay_failed_total{destination="1"} 0.0' in metrics
    assert "photo_relay_received_total 2.0" in metrics  # not about a destination: no label

    section = page.split("<h2>People</h2>", 1)[1].split("</section>", 1)[0]
    anna_line = section.split('data-person="anna"', 1)[1].split("</li>", 1)[0]
    assert "4 verified" in anna_line and "(2 destination(s))" in anna_line
    assert 'data-last-backup="anna-ipad">anna-ipad: last backup never' in anna_line
    assert 'data-person="me"' in section and 'data-person="ben"' in section


def _verified_per_destination(metrics: str) -> dict[int, float]:
    return {
        int(line.split('"')[1]): float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("photo_relay_verified_total{")
    }
