"""/docs and /redoc work without internet: every file they load comes from photo-relay itself."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from tests.conftest import Service

# What each kind of file must be served as, so a browser runs or applies it.
CONTENT_TYPES = {
    "script": ("text/javascript", "application/javascript"),
    "stylesheet": ("text/css",),
    "icon": ("image/",),
    "spec": ("application/json",),
}


class AssetLinks(HTMLParser):
    """The URLs a page makes the browser fetch: scripts, styles, icons, ReDoc's spec-url."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.urls.append(("script", str(found["src"])))
        elif tag == "link" and found.get("href"):
            kind = "stylesheet" if found.get("rel") == "stylesheet" else "icon"
            self.urls.append((kind, str(found["href"])))
        elif tag == "redoc" and found.get("spec-url"):
            self.urls.append(("spec", str(found["spec-url"])))


def asset_urls(page: str) -> list[tuple[str, str]]:
    parser = AssetLinks()
    parser.feed(page)
    # Swagger UI is told where the schema is inside its inline script: `url: '/openapi.json'`.
    parser.urls += [("spec", url) for url in re.findall(r"\burl: '([^']+)'", page)]
    return parser.urls


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_every_file_from_the_service(service: Service, page: str) -> None:
    """No absolute URL anywhere in the page; each script, style, icon and schema answers 200."""
    with service.client() as client:
        response = client.get(page)
        assert response.status_code == 200
        html = response.text
        assert not re.search(r"(https?:)?//[\w.-]+\.[a-z]{2,}", html), "the page names a host"
        urls = asset_urls(html)
        kinds = {kind for kind, _ in urls}
        assert {"script", "spec"} <= kinds, urls
        for kind, url in urls:
            assert url.startswith("/") and not url.startswith("//"), url
            fetched = client.get(url)
            assert fetched.status_code == 200, url
            assert fetched.headers["content-type"].startswith(CONTENT_TYPES[kind]), (url, kind)
            assert fetched.content, url


def test_swagger_ui_sends_the_schema_to_no_validator(service: Service) -> None:
    """Swagger UI's default validator badge would post the schema to validator.swagger.io."""
    with service.client() as client:
        html = client.get("/docs").text
    assert '"validatorUrl": null' in html
