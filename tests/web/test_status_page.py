"""The status page over HTTP: login, logout, refusals, headers, item page, retry, thumbnails."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from pathlib import Path

from PIL import Image

from app.clock import iso, now
from app.store.db import Database
from tests.conftest import Service, make_settings, running, sha256_hex
from tests.support import samples
from tests.support.servers import wait_for
from tests.support.status_page import (
    blocked_library_settings,
    csrf_token,
    logged_in,
    photo_from_2024,
    upload,
)


def test_page_sends_strangers_to_the_login_form(service: Service) -> None:
    """Without a session `/` redirects to /login, which asks for the admin token."""
    with service.client() as client:
        reply = client.get("/")
        assert reply.status_code == 303
        assert reply.headers["location"] == "/login"
        login = client.get("/login")
    assert login.status_code == 200
    assert 'name="token"' in login.text
    assert "photo-relay admin-token" in login.text


def test_login_sets_a_strict_httponly_session_cookie(service: Service) -> None:
    """The admin token is exchanged for a random HttpOnly SameSite cookie, never echoed."""
    with service.client() as client:
        reply = client.post("/login", data={"token": service.admin_token})
        cookie = reply.headers["set-cookie"]
        assert reply.status_code == 303
        assert "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower()
        assert "Secure" not in cookie  # plain http on the LAN; https adds it
        assert service.admin_token not in cookie
        page = client.get("/")
    assert page.status_code == 200
    assert "Nothing received yet" in page.text


def test_wrong_token_and_device_token_cannot_log_in(service: Service) -> None:
    """A wrong token and a device token get 401 with a reason, and no session."""
    with service.client() as client:
        wrong = client.post("/login", data={"token": "not-a-token"})
        device = client.post("/login", data={"token": service.device_token})
        assert wrong.status_code == device.status_code == 401
        assert "not the admin token" in wrong.text
        assert "device token" in device.text
        assert "set-cookie" not in wrong.headers and "set-cookie" not in device.headers
        assert client.get("/").status_code == 303


def test_device_token_is_refused_on_admin_pages(service: Service) -> None:
    """A device token as Bearer gets 401 on the page and item page; the admin token works."""
    sha = sha256_hex(samples.jpeg(seed=1))
    upload(service, samples.jpeg(seed=1), "IMG_0001.JPG")
    with service.device() as device:
        assert device.get("/").status_code == 401
        assert device.get(f"/items/{sha}").status_code == 401
        assert device.post("/retry").status_code == 401
    with service.admin() as admin:
        assert admin.get("/").status_code == 200
        assert admin.get(f"/items/{sha}").status_code == 200


def test_logout_needs_the_csrf_token_and_ends_the_session(service: Service) -> None:
    """Logout without the form's token is refused; with it, the cookie stops working."""
    with logged_in(service) as client:
        forged = client.post("/logout", data={"csrf_token": "guess"})
        assert forged.status_code == 403
        assert client.get("/").status_code == 200
        token = csrf_token(client)
        cookie = client.cookies["photo_relay_session"]
        out = client.post("/logout", data={"csrf_token": token})
        assert out.status_code == 303 and out.headers["location"] == "/login"
    with service.client() as stale:
        stale.cookies.set("photo_relay_session", cookie)
        assert stale.get("/").status_code == 303


def test_cross_site_form_posts_are_refused(service: Service) -> None:
    """A form post with the session but from another origin does nothing."""
    with logged_in(service) as client:
        token = csrf_token(client)
        reply = client.post(
            "/retry", data={"csrf_token": token}, headers={"Origin": "http://evil.example"}
        )
        assert reply.status_code == 401
        assert "other sites" in reply.text
        assert client.get("/").status_code == 200


def test_page_carries_security_headers(service: Service) -> None:
    """CSP limited to our origin, no framing, nosniff, same-origin referrers on page and login."""
    with logged_in(service) as client:
        for path in ("/", "/login", "/static/live.js"):
            headers = client.get(path).headers
            csp = headers["content-security-policy"]
            assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
            assert "script-src 'self'" in csp
            assert headers["x-frame-options"] == "DENY"
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["referrer-policy"] == "same-origin"


def test_item_page_shows_receipt_and_journal_in_plain_words(service: Service) -> None:
    """The item page says who sent it, where it landed and how it was verified."""
    data = samples.heic(datetime(2024, 5, 1, 21, 4), seed=5)
    sha = sha256_hex(data)
    upload(service, data, "IMG_0001.HEIC")
    with service.admin() as admin:
        wait_for(lambda: admin.get(f"/v1/items/{sha}").json()["state"] == "verified")
    with logged_in(service) as client:
        page = client.get(f"/items/{sha}").text
        missing = client.get("/items/" + "0" * 64)
    assert "from phone" in page
    assert "2024/05/IMG_0001.HEIC" in page
    assert "Received IMG_0001.HEIC" in page
    assert "verified: read back and compared" in page
    assert "sha256-reread" not in page and "spool" not in page.lower()
    # times in plain words, in the owner's zone: no raw ISO timestamp in what is read
    assert "today " in page
    assert not re.search(r">[^<]*\d{4}-\d\d-\d\dT\d\d:\d\d", page)
    assert "from the photo&#39;s EXIF data" in page
    assert missing.status_code == 404


def test_heic_thumbnail_is_made_once_and_cached(service: Service) -> None:
    """A HEIC gets a JPEG thumbnail through pillow-heif, kept under the data dir."""
    data = samples.heic(seed=9)
    sha = sha256_hex(data)
    upload(service, data, "IMG_0009.HEIC")
    with logged_in(service) as client:
        reply = client.get(f"/thumbnails/{sha}.jpg")
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(reply.content)).format == "JPEG"
        cached = service.settings.data_dir / "thumbnails" / sha[:2] / f"{sha}.jpg"
        assert cached.read_bytes() == reply.content
        page = client.get("/").text
    assert f"/thumbnails/{sha}.jpg" in page


def test_video_shows_an_icon_not_a_thumbnail(service: Service) -> None:
    """A movie is listed with the video icon; nothing of it is decoded."""
    data = samples.quicktime(datetime(2024, 5, 1, 19, 0).astimezone(), seed=2)
    upload(service, data, "IMG_0002.MOV")
    with logged_in(service) as client:
        page = client.get("/").text
    assert "/static/video.svg" in page
    assert not (service.settings.data_dir / "thumbnails").exists()


def test_failed_item_shows_its_reason_and_retry_fixes_it(tmp_path: Path) -> None:
    """A copy that fails for real is listed with why; the page's retry button requeues it."""
    settings = blocked_library_settings(tmp_path)
    with running(settings) as service:
        data = photo_from_2024()
        sha = sha256_hex(data)
        upload(service, data, "IMG_0001.JPG")
        with service.admin() as admin:
            wait_for(lambda: admin.get(f"/v1/items/{sha}").json()["state"] == "failed")
        with logged_in(service) as client:
            page = client.get("/").text
            assert "could not be copied" in page
            assert "IMG_0001.JPG" in page
            assert "Could not write at the destination (Not a directory" in page
            (Path(settings.local_library_dir) / "2024").unlink()  # the owner fixes the cause
            reply = client.post("/retry", data={"csrf_token": csrf_token(client), "sha256": sha})
            assert reply.status_code == 303
            with service.admin() as admin:
                wait_for(lambda: admin.get(f"/v1/items/{sha}").json()["state"] == "verified")
            journal = client.get(f"/items/{sha}").text
        assert "Put back in the queue by hand." in journal


def test_retry_without_csrf_token_changes_nothing(tmp_path: Path) -> None:
    """A retry form posted without the session's CSRF token is refused; the item stays failed."""
    with running(blocked_library_settings(tmp_path)) as service:
        data = photo_from_2024(seed=3)
        sha = sha256_hex(data)
        upload(service, data, "IMG_0003.JPG")
        with service.admin() as admin:
            wait_for(lambda: admin.get(f"/v1/items/{sha}").json()["state"] == "failed")
            with logged_in(service) as client:
                assert client.post("/retry", data={"sha256": sha}).status_code == 403
            assert admin.get(f"/v1/items/{sha}").json()["state"] == "failed"


def test_quiet_device_gets_a_warning(tmp_path: Path) -> None:
    """A device added 3 days ago that never sent anything is flagged (quiet after 1 day)."""
    settings = make_settings(tmp_path, device_quiet_days=1)
    with running(settings) as service:
        fresh = logged_in(service)
        with fresh as client:
            assert "No backup from" not in client.get("/").text  # added just now: not quiet
        db = Database(settings.database_path)
        try:
            three_days_ago = iso(now() - timedelta(days=3))
            db.call(lambda c: c.execute("UPDATE devices SET created_at = ?", (three_days_ago,)))
        finally:
            db.close()
        with logged_in(service) as client:
            page = client.get("/").text
    assert "Nothing from this device for more than 1 days" in page
    assert "No backup from phone" in page
