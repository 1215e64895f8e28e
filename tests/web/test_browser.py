"""The status page and the API docs in a real headless Chromium (Debian's, driven by Playwright).

No browser is downloaded: Playwright launches /usr/bin/chromium, which .ci/run installs
with apt. Screenshots of a phone and a desktop viewport go to test-artifacts/.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Service, remote_settings, running, sha256_hex
from tests.support import samples
from tests.support.servers import wait_for
from tests.support.status_page import blocked_library_settings, photo_from_2024, upload
from tests.support.webdav_server import DavServer

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
    pytest.skip(
        "Chromium is missing: install it with `apt-get install -y chromium` (.ci/run does)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def log_in(browser: object, service: Service, viewport: dict[str, int]) -> object:
    """A page in a fresh context, logged in through the form like a person would."""
    context = browser.new_context(viewport=viewport)  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(service.base_url + "/")
    assert page.url.endswith("/login")
    page.fill("#token", service.admin_token)
    page.click("button[type=submit]")
    page.wait_for_url(service.base_url + "/")
    return page


def count(page: object, state: str) -> str:
    text: str = page.text_content(f'[data-count="{state}"]')  # type: ignore[attr-defined]
    return text.strip()


def test_counts_and_newest_files_change_live_when_a_photo_arrives(
    browser: object, service: Service
) -> None:
    """With the page open, an upload updates counts and the newest files without a reload."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = log_in(browser, service, PHONE)
    page.wait_for_selector("#live:not([hidden]):not(.off)")  # type: ignore[attr-defined]
    assert count(page, "total") == "0"
    page.evaluate("window.stillTheSamePage = true")  # type: ignore[attr-defined]
    data = samples.heic(seed=51)
    sha = sha256_hex(data)
    upload(service, data, "IMG_0051.HEIC")
    # A locator assertion, not wait_for_function: the page's CSP forbids string eval.
    sync_api.expect(page.locator('[data-count="verified"]')).to_have_text("1", timeout=20000)  # type: ignore[attr-defined]
    assert count(page, "total") == "1"
    assert page.evaluate("window.stillTheSamePage") is True  # type: ignore[attr-defined]
    page.wait_for_selector(f'#recent li[data-sha="{sha}"]')  # type: ignore[attr-defined]
    assert "Everything is safe" in page.text_content("#headline")  # type: ignore[attr-defined]
    assert "last backup just now" in page.text_content('[data-device="phone"]')  # type: ignore[attr-defined]
    assert "Received IMG_0051.HEIC" in page.text_content("#activity")  # type: ignore[attr-defined]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # type: ignore[attr-defined]
    page.screenshot(path=str(ARTIFACTS / "status-phone.png"), full_page=True)  # type: ignore[attr-defined]

    page.click(f'#recent li[data-sha="{sha}"] a')  # type: ignore[attr-defined]
    page.wait_for_url(f"{service.base_url}/items/{sha}")  # type: ignore[attr-defined]
    assert "verified: read back and compared" in page.text_content(".journal")  # type: ignore[attr-defined]
    page.screenshot(path=str(ARTIFACTS / "item-phone.png"), full_page=True)  # type: ignore[attr-defined]
    page.context.close()  # type: ignore[attr-defined]


def test_failed_copy_is_retried_with_the_button(browser: object, tmp_path: Path) -> None:
    """A failed item shows its reason; after the cause is fixed, Retry gets it verified."""
    ARTIFACTS.mkdir(exist_ok=True)
    settings = blocked_library_settings(tmp_path)
    with running(settings) as service:
        data = photo_from_2024(seed=52)
        sha = sha256_hex(data)
        upload(service, data, "IMG_0052.JPG")
        upload(service, samples.jpeg(seed=53), "IMG_0053.JPG")
        with service.admin() as admin:
            wait_for(lambda: admin.get(f"/v1/items/{sha}").json()["state"] == "failed")
            wait_for(lambda: admin.get("/v1/status").json()["counts"]["verified"] == 1)
        page = log_in(browser, service, DESKTOP)
        reason = page.text_content("#failed .why")  # type: ignore[attr-defined]
        assert "Could not write at the destination" in reason
        page.screenshot(path=str(ARTIFACTS / "status-desktop-failed.png"), full_page=True)  # type: ignore[attr-defined]
        (settings.local_library_dir / "2024").unlink()  # the owner moves the file away
        page.click("#failed li button")  # type: ignore[attr-defined]
        sync_api.expect(page.locator('[data-count="verified"]')).to_have_text("2", timeout=20000)  # type: ignore[attr-defined]
        assert count(page, "failed") == "0"
        sync_api.expect(page.locator("#queue li.empty")).to_be_visible()  # type: ignore[attr-defined]
        page.screenshot(path=str(ARTIFACTS / "status-desktop.png"), full_page=True)  # type: ignore[attr-defined]
        page.context.close()  # type: ignore[attr-defined]
    assert (settings.local_library_dir / "2024" / "05" / "IMG_0052.JPG").read_bytes() == data


def test_an_open_page_recounts_through_an_outage(
    browser: object, tmp_path: Path, nextcloud: DavServer
) -> None:
    """NextCloud stops while the page is open: the headline names the outage with the count
    of photos waiting, and follows each new upload without a reload; once NextCloud is back
    the counts and the headline say so too."""
    ARTIFACTS.mkdir(exist_ok=True)
    settings = remote_settings(
        tmp_path,
        nextcloud,
        relay_retry_base_seconds=0.01,
        relay_retry_max_seconds=0.05,
        relay_max_attempts=3,
        relay_probe_seconds=0.3,  # the probe asks again quickly: no sleeping
    )
    with running(settings) as service:
        page = log_in(browser, service, DESKTOP)
        page.wait_for_selector("#live:not([hidden]):not(.off)")  # type: ignore[attr-defined]
        page.evaluate("window.stillTheSamePage = true")  # type: ignore[attr-defined]
        headline = page.locator("#headline")  # type: ignore[attr-defined]
        nextcloud.stop()
        for waiting in (1, 2, 3):
            upload(service, samples.jpeg(seed=60 + waiting), f"IMG_006{waiting}.JPG")
            photos = "photo is" if waiting == 1 else "photos are"
            sync_api.expect(headline).to_have_text(  # type: ignore[attr-defined]
                re.compile(
                    rf"NextCloud has not answered since \d\d:\d\d; {waiting} {photos} safe "
                    r"here and wait\."
                ),
                timeout=20000,
            )
            sync_api.expect(page.locator('[data-count="total"]')).to_have_text(str(waiting))  # type: ignore[attr-defined]
        with service.admin() as admin:
            assert admin.get("/v1/status").json()["counts"]["failed"] == 0
        # The activity list says its times the way the page does: "today 21:38".
        said = page.text_content("#activity li time")  # type: ignore[attr-defined]
        assert re.fullmatch(r"today \d\d:\d\d", said), said
        page.screenshot(path=str(ARTIFACTS / "status-desktop-outage.png"), full_page=True)  # type: ignore[attr-defined]
        nextcloud.start()
        sync_api.expect(page.locator('[data-count="verified"]')).to_have_text("3", timeout=30000)  # type: ignore[attr-defined]
        sync_api.expect(headline).to_have_text(  # type: ignore[attr-defined]
            "Everything is safe: all 3 files are verified copies."
        )
        assert page.evaluate("window.stillTheSamePage") is True  # type: ignore[attr-defined]
        page.context.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("page_path", "operation"),
    [("/docs", ".opblock-summary"), ("/redoc", '[data-section-id^="operation/"]')],
    ids=["swagger-ui", "redoc"],
)
def test_api_docs_render_every_operation_with_the_internet_cut_off(
    browser: object, service: Service, page_path: str, operation: str
) -> None:
    """/docs and /redoc in Chromium, every other host refused: all operations are listed."""
    with service.client() as client:
        paths = client.get("/openapi.json").json()["paths"]
    operations = sum(1 for item in paths.values() for method in item if method != "parameters")
    elsewhere: list[str] = []

    def only_this_service(route: object) -> None:
        url: str = route.request.url  # type: ignore[attr-defined]
        if url.startswith(service.base_url + "/"):
            route.continue_()  # type: ignore[attr-defined]
        else:
            elsewhere.append(url)
            route.abort()  # type: ignore[attr-defined]

    context = browser.new_context(viewport=DESKTOP)  # type: ignore[attr-defined]
    try:
        context.route("**/*", only_this_service)
        page = context.new_page()
        page.goto(service.base_url + page_path)
        page.wait_for_selector(operation)
        shown = page.locator(operation).count()
        assert shown == operations, (shown, operations)
        assert elsewhere == [], elsewhere
    finally:
        context.close()
