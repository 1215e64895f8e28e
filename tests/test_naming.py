"""File names: hostile names never leave the library and are stored under safe names.

The end-to-end test sends each name to a running service and looks at where the relay
put the file; the rest pin the pure path functions in app/naming.py.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from app.errors import ConfigurationError
from app.naming import MAX_NAME_BYTES, alternative_paths, remote_path, safe_name
from tests.conftest import Service
from tests.support import samples
from tests.support.on_disk import library_files
from tests.support.uploads import sha256_hex, wait_verified

# name sent -> the extension the stored name must end with
HOSTILE_NAMES = {
    "../../etc/passwd": None,
    "../../../../tmp/escape.JPG": ".JPG",
    "/etc/cron.d/evil.JPG": ".JPG",
    "..\\..\\windows\\system32\\evil.JPG": ".JPG",
    "IMG\x00_0001.JPG": ".JPG",
    "IMG_0002.JPG\x00.sh": None,
    "line\nbreak\r.JPG": ".JPG",
    "A" * 296 + ".JPG": ".JPG",
    "é" * 148 + ".HEIC": ".HEIC",
    "Cafe\u0301 cre\u0300me.JPG": ".JPG",
    "folder/sub/IMG_0003.JPG": ".JPG",
    "back\\slash\\IMG_0004.JPG": ".JPG",
    ".DS_Store": None,
    "..": None,
    ".": None,
    " ": None,
    "🌅 sunset 🏖️.JPG": ".JPG",
    "IMG_0005.part": None,
}


def assert_safe_name(name: str) -> None:
    assert name == unicodedata.normalize("NFC", name)
    assert 0 < len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert not any(c in name for c in "/\\") and all(ord(c) >= 32 and c != "\x7f" for c in name)
    assert not name.startswith(".")


def test_hostile_names_stay_in_the_library_under_safe_names(
    service: Service, tmp_path: Path
) -> None:
    """Traversal, NUL, control, 300-byte, NFD, slashed, dot and emoji names land safely."""
    sent: dict[str, tuple[str, str | None, bytes]] = {}
    with service.device() as client:
        for seed, (name, extension) in enumerate(HOSTILE_NAMES.items(), start=100):
            data = samples.jpeg(datetime(2024, 2, 29, 12, 0), seed=seed)
            response = client.put(
                f"/v1/blobs/{sha256_hex(data)}", content=data, params={"name": name}
            )
            assert response.status_code == 201, (name, response.text)
            assert response.json()["original_name"] == name
            sent[sha256_hex(data)] = (name, extension, data)
        receipts = {sha: wait_verified(client, sha) for sha in sent}
    library = service.library.resolve()
    for sha, receipt in receipts.items():
        name, extension, data = sent[sha]
        stored = (library / receipt["remote_path"]).resolve()
        assert stored.is_relative_to(library / "2024" / "02"), (name, receipt["remote_path"])
        assert stored.read_bytes() == data
        assert_safe_name(stored.name)
        if extension:
            assert stored.name.endswith(extension), (name, stored.name)
    assert len(library_files(service.library)) == len(HOSTILE_NAMES)
    data_dir = service.settings.data_dir.resolve()
    strays = [
        p
        for p in tmp_path.rglob("*")
        if p.is_file()
        and p.parent.resolve() != data_dir
        and not p.resolve().is_relative_to(library)
        and not p.resolve().is_relative_to(service.settings.spool_dir.resolve())
    ]
    assert strays == []


def test_hostile_part_file_names_in_a_form_stay_in_the_library(service: Service) -> None:
    """A form part's filename is never trusted as a path either."""
    data = samples.jpeg(datetime(2024, 2, 29, 12, 0), seed=150)
    with service.device() as client:
        response = client.post(
            "/v1/uploads", files=[("file", ("../../../outside.JPG", data, "image/jpeg"))]
        )
        assert response.status_code == 201, response.text
        receipt = wait_verified(client, sha256_hex(data))
    stored = (service.library / receipt["remote_path"]).resolve()
    assert stored.parent == (service.library / "2024" / "02").resolve()
    assert_safe_name(stored.name)
    assert stored.name.endswith("outside.JPG")


def test_a_device_name_starting_with_two_dots_can_upload(
    start_service: Callable[..., Service],
) -> None:
    """With {device} in the template, a device called '..ipad' still gets its folder."""
    service = start_service(path_template="{device}/{year}/{name}")
    token = service.add_device("..ipad")
    data = samples.jpeg(datetime(2024, 2, 29, 12, 0), seed=151)
    with service.client(token) as client:
        response = client.put(
            f"/v1/blobs/{sha256_hex(data)}", content=data, params={"name": "IMG_0151.JPG"}
        )
        assert response.status_code == 201, response.text
        receipt = wait_verified(client, sha256_hex(data))
    assert receipt["remote_path"] == "..ipad/2024/IMG_0151.JPG"
    assert (service.library / "..ipad" / "2024" / "IMG_0151.JPG").read_bytes() == data


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("IMG_0001.HEIC", "IMG_0001.HEIC"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("a/b\\c.jpg", "a_b_c.jpg"),
        ("Cafe\u0301.jpg", "Caf\u00e9.jpg"),
        (".DS_Store", "DS_Store"),
        ("..", "deadbeef"),
        ("", "deadbeef"),
        ("clip.part", "clip.part_"),
    ],
)
def test_safe_name_examples(original: str, expected: str) -> None:
    """Separators and control characters become _, leading dots go, NFC, reserved ext fixed."""
    assert safe_name(original, fallback_stem="deadbeef") == expected


def test_safe_name_adds_the_extension_read_from_the_bytes_when_there_is_none() -> None:
    """A name without an extension gets the one the content's signature names."""
    assert safe_name("holiday", fallback_stem="x", extension="heic") == "holiday.heic"
    assert safe_name("holiday.JPG", fallback_stem="x", extension="heic") == "holiday.JPG"


def test_long_names_are_cut_to_250_bytes_keeping_the_extension_and_whole_characters() -> None:
    """A 300-byte name is shortened on a character boundary and keeps its extension."""
    for original in ("A" * 296 + ".JPG", "é" * 150 + ".HEIC", "🌅" * 80 + ".MOV"):
        name = safe_name(original, fallback_stem="x")
        assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
        assert name.endswith(original[-5:].lstrip("A"))
        assert original.startswith(name.rpartition(".")[0])


def test_remote_path_fills_the_template_from_local_capture_time() -> None:
    """The path comes from the template's fields; the same inputs give the same path."""
    args = {
        "captured_local": datetime(2024, 1, 2, 3, 4),
        "name": "IMG_0001.HEIC",
        "sha256": "ab" * 32,
        "kind": "photo",
        "device": "phone",
    }
    template = "{year}/{month}-{day}/{device}/{kind}/{stem}_{sha8}.{ext}"
    assert remote_path(template, **args) == "2024/01-02/phone/photo/IMG_0001_abababab.HEIC"  # type: ignore[arg-type]
    assert remote_path("{year}/{month}/{name}", **args) == "2024/01/IMG_0001.HEIC"  # type: ignore[arg-type]


def test_a_device_name_cannot_add_or_climb_folders() -> None:
    """Field values are confined to their own segment; a name starting with '..' is fine."""
    path = remote_path(
        "{device}/{name}",
        captured_local=datetime(2024, 1, 2),
        name="a.jpg",
        sha256="0" * 64,
        kind="photo",
        device="../../x",
    )
    assert path == ".._.._x/a.jpg"


def test_an_unknown_template_field_is_a_configuration_error() -> None:
    """A template naming a field that does not exist is refused with the known fields."""
    with pytest.raises(ConfigurationError, match="colour"):
        remote_path(
            "{year}/{colour}/{name}",
            captured_local=datetime(2024, 1, 2),
            name="a.jpg",
            sha256="0" * 64,
            kind="photo",
            device="phone",
        )


@pytest.mark.parametrize("template", ["../{name}", "{year}/../../{name}", "/{year}/./{name}"])
def test_template_segments_that_climb_are_dropped(template: str) -> None:
    """`..`, `.` and a leading `/` in a template never lead out of the library."""
    path = remote_path(
        template,
        captured_local=datetime(2024, 1, 2),
        name="a.jpg",
        sha256="0" * 64,
        kind="photo",
        device="phone",
    )
    assert path in ("a.jpg", "2024/a.jpg")


def test_alternative_names_are_deterministic_and_keep_the_extension() -> None:
    """A taken name gives `stem (sha8).ext`, then longer hashes; the same every time."""
    sha = "0123456789abcdef" * 4
    paths = list(alternative_paths("2024/01/IMG_0001.JPG", sha))
    assert paths == [
        "2024/01/IMG_0001.JPG",
        "2024/01/IMG_0001 (01234567).JPG",
        "2024/01/IMG_0001 (0123456789abcdef).JPG",
        f"2024/01/IMG_0001 ({sha}).JPG",
    ]
    assert paths == list(alternative_paths("2024/01/IMG_0001.JPG", sha))
    long = list(alternative_paths("x/" + "A" * 246 + ".JPG", sha))
    assert all(len(p.rpartition("/")[2].encode()) <= MAX_NAME_BYTES for p in long)
    assert all(p.endswith(".JPG") for p in long)
