"""POST /v1/uploads (multipart/form-data): several files, describing fields, all-or-nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import httpx

from tests.conftest import Service
from tests.support import samples
from tests.support.on_disk import item_rows, nothing_kept, spool_objects, spool_temp_files
from tests.support.uploads import post_form, sha256_hex, wait_verified


def test_several_files_201_then_the_same_form_again_200(service: Service) -> None:
    """Each file of a form gets a receipt; sending the form again answers 200, all known."""
    photo = samples.jpeg(datetime(2024, 3, 4, 5, 6), seed=10)
    live = samples.heic(datetime(2024, 3, 4, 5, 7), seed=11)
    movie = samples.quicktime(datetime(2024, 3, 4, 5, 8), seed=12)
    files = [("IMG_0010.JPG", photo), ("IMG_0011.HEIC", live), ("IMG_0012.MOV", movie)]
    with service.device() as client:
        first = post_form(client, files)
        second = post_form(client, files)
    assert first.status_code == 201, first.text
    assert (first.json()["new"], first.json()["already_safe"]) == (3, 0)
    assert second.status_code == 200, second.text
    assert (second.json()["new"], second.json()["already_safe"]) == (0, 3)
    items = first.json()["items"]
    assert [i["sha256"] for i in items] == [sha256_hex(d) for _, d in files]
    assert [i["original_name"] for i in items] == [n for n, _ in files]
    assert [i["kind"] for i in items] == ["photo", "photo", "video"]
    assert [i["received_at"] for i in second.json()["items"]] == [i["received_at"] for i in items]
    assert sorted(item_rows(service.settings)) == sorted(sha256_hex(d) for _, d in files)
    assert spool_temp_files(service.settings) == []


def test_one_new_file_among_known_ones_answers_201(service: Service) -> None:
    """A form is 201 when any of its files is new, and says which ones were."""
    known, fresh = samples.jpeg(seed=13), samples.jpeg(seed=14)
    with service.device() as client:
        assert post_form(client, [("a.jpg", known)]).status_code == 201
        response = post_form(client, [("a.jpg", known), ("b.jpg", fresh)])
    assert response.status_code == 201, response.text
    assert [i["new"] for i in response.json()["items"]] == [False, True]
    assert (response.json()["new"], response.json()["already_safe"]) == (1, 1)


def test_name_captured_at_and_sha256_fields_describe_the_files_in_order(
    service: Service,
) -> None:
    """The n-th `name`, `captured_at` and `sha256` field belong to the n-th file."""
    one, two = samples.jpeg(seed=15), samples.jpeg(seed=16)
    fields = {
        "name": ["IMG_0015.JPG", "IMG_0016.JPG"],
        "captured_at": ["2021-01-02T03:04:05+01:00", "2020-12-31T23:59:00-05:00"],
        "sha256": [sha256_hex(one), sha256_hex(two).upper()],
    }
    with service.device() as client:
        response = post_form(client, [("upload.bin", one), ("upload.bin", two)], fields)
    assert response.status_code == 201, response.text
    items = response.json()["items"]
    assert [i["original_name"] for i in items] == ["IMG_0015.JPG", "IMG_0016.JPG"]
    assert [i["captured_source"] for i in items] == ["client", "client"]
    assert [i["planned_path"] for i in items] == ["2021/01/IMG_0015.JPG", "2020/12/IMG_0016.JPG"]


def test_files_are_accepted_under_any_field_name_and_kind_comes_from_the_bytes(
    service: Service,
) -> None:
    """A JPEG sent as `photo` with a text/plain content type is still a photo."""
    data = samples.jpeg(seed=17)
    with service.device() as client:
        response = client.post(
            "/v1/uploads", files=[("photo", ("holiday.jpg", data, "text/plain"))]
        )
    assert response.status_code == 201, response.text
    assert response.json()["items"][0]["kind"] == "photo"


def test_field_counts_that_do_not_match_the_files_are_refused_with_400(
    service: Service,
) -> None:
    """Two files with three names cannot be paired: 400, and none of the files is kept."""
    files = [("a.jpg", samples.jpeg(seed=18)), ("b.jpg", samples.jpeg(seed=19))]
    with service.device() as client:
        names = post_form(client, files, {"name": ["a.jpg", "b.jpg", "c.jpg"]})
        dates = post_form(client, files, {"captured_at": ["2024-01-01T00:00:00"]})
    for response in (names, dates):
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "fields_do_not_match_files"
    assert nothing_kept(service.settings)


def test_a_wrong_claimed_sha256_refuses_the_whole_form(service: Service) -> None:
    """If one file's claimed hash is wrong, 422 names it and no file of the form is kept."""
    good, damaged = samples.jpeg(seed=20), samples.jpeg(seed=21)
    fields = {"sha256": [sha256_hex(good), sha256_hex(b"what was meant")]}
    with service.device() as client:
        response = post_form(client, [("good.jpg", good), ("damaged.jpg", damaged)], fields)
        lookups = [client.get(f"/v1/items/{sha256_hex(d)}") for d in (good, damaged)]
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "hash_mismatch"
    assert [r.status_code for r in lookups] == [404, 404]
    assert nothing_kept(service.settings)


def test_a_claimed_sha256_that_is_not_a_hash_is_refused(service: Service) -> None:
    """A `sha256` field that is not 64 hex characters is a 422, and nothing is kept."""
    with service.device() as client:
        response = post_form(client, [("a.jpg", samples.jpeg(seed=22))], {"sha256": ["abc"]})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "bad_hash"
    assert nothing_kept(service.settings)


def test_a_bad_captured_at_field_refuses_the_form(service: Service) -> None:
    """A `captured_at` that is not ISO 8601 gets 422 and nothing is kept."""
    with service.device() as client:
        response = post_form(
            client, [("a.jpg", samples.jpeg(seed=23))], {"captured_at": ["yesterday"]}
        )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "bad_capture_time"
    assert nothing_kept(service.settings)


def test_same_file_twice_in_one_form_is_stored_once(service: Service) -> None:
    """Two parts with the same bytes give one row: the first new, the second already safe."""
    data = samples.jpeg(seed=24)
    with service.device() as client:
        response = post_form(client, [("a.jpg", data), ("copy.jpg", data)])
    assert response.status_code == 201, response.text
    assert [i["new"] for i in response.json()["items"]] == [True, False]
    assert item_rows(service.settings) == [sha256_hex(data)]
    assert len(spool_objects(service.settings)) == 1
    assert spool_temp_files(service.settings) == []


def test_same_content_by_form_from_two_devices_keeps_the_first_device(service: Service) -> None:
    """A form from a second device with known content answers 200 with the first receipt."""
    data = samples.heic(datetime(2024, 8, 9, 10, 11), seed=25)
    tablet = service.add_device("tablet")
    with service.device() as phone, service.client(tablet) as other:
        first = post_form(phone, [("IMG_0025.HEIC", data)])
        second = post_form(other, [("IMG_0025.HEIC", data)])
        wait_verified(phone, sha256_hex(data))
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["items"][0]["device"] == "phone"
    assert first.json()["items"][0]["received_at"] == second.json()["items"][0]["received_at"]
    assert [p.read_bytes() for p in service.library.rglob("*.HEIC")] == [data]


def test_twenty_concurrent_forms_with_the_same_file_store_it_once(service: Service) -> None:
    """20 forms carrying the same bytes at once all get a 2xx; one object, one row."""
    data = samples.jpeg(seed=26, padding=1024 * 1024)

    def send(_: int) -> httpx.Response:
        with service.device() as client:
            return post_form(client, [("IMG_0026.JPG", data)])

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(send, range(20)))
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    assert sum(r.json()["new"] for r in responses) == 1
    assert item_rows(service.settings) == [sha256_hex(data)]
    assert len(spool_objects(service.settings)) == 1
    assert spool_temp_files(service.settings) == []
