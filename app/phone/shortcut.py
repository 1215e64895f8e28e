"""Builds the three bundled Apple Shortcuts as unsigned plists (plistlib), deterministically.

"Back up to photo-relay" runs from a Wi-Fi automation and walks the photo library in pages
the service hands out (`/v1/backup/...`), and adds photos whose copy is verified to the
"Safe at home" album; "Send to photo-relay" uploads what is shared to it; "Free up space"
(by hand only) deletes from the phone the photos of that album the service vouches for.
Nothing personal is baked in: server address, device token and home Wi-Fi name are import
questions (the album's name is a setting, written into the files the service serves). The
file format is described in shared/shortcuts-format.md; tests validate it.
"""

from __future__ import annotations

import plistlib
from pathlib import Path
from typing import Any

from app.phone.plist import (
    IS,
    IS_NOT,
    Attachment,
    Builder,
    Output,
    Plist,
    as_date,
    as_number,
    attachment,
    detail,
    fields,
    file_field,
    if_block,
    iso_8601,
    key,
    number_field,
    shortcut_input,
    text,
    text_field,
    variable,
)

__all__ = [
    "BACKUP_FILE",
    "DEFAULT_ALBUM",
    "FREE_UP_FILE",
    "SHARE_FILE",
    "build_all",
    "build_backup",
    "build_free_up",
    "build_share",
    "shortcut_bytes",
    "write_all",
]

BACKUP_FILE = "Back up to photo-relay.shortcut"
SHARE_FILE = "Send to photo-relay.shortcut"
FREE_UP_FILE = "Free up space.shortcut"
# PHOTO_RELAY_SHORTCUT_SAFE_ALBUM's default; the committed files carry this name.
DEFAULT_ALBUM = "Safe at home"

CLIENT_VERSION = "2302.0.4"
MINIMUM_CLIENT_VERSION = 900

# Import questions ask for these; each is the plain-string value of one Text action.
SERVER_PLACEHOLDER = "https://photo-relay.local:8000"
TOKEN_PLACEHOLDER = "paste-the-device-token-here"
WIFI_PLACEHOLDER = "My Home Wi-Fi"

RUN_PATH = "/v1/backup/runs/"
FREE_UP_PATH = "/v1/free-up/runs/"
# The Repeat that walks pages runs this often at most; the service ends a run sooner
# (`more` = no after PHOTO_RELAY_SHORTCUT_MAX_BATCHES pages), and each idle turn is one If.
PAGE_TURNS = 200


def ask_text(b: Builder, questions: list[Plist], value: str, question: str, name: str) -> Output:
    """A Text action whose plain value an import question replaces; its output is `name`."""
    questions.append(
        {
            "ActionIndex": b.index(),
            "Category": "Parameter",
            "ParameterKey": "WFTextActionText",
            "Text": question,
            "DefaultValue": value,
        }
    )
    return b.add("gettext", output=name, WFTextActionText=value)


class Connection:
    """The server address and the token, as the two Text actions that hold them."""

    def __init__(self, b: Builder, questions: list[Plist]) -> None:
        self.server = ask_text(
            b,
            questions,
            SERVER_PLACEHOLDER,
            "Address of your photo-relay, as reachable from the phone at home "
            "(e.g. http://192.168.1.20:8000), without a trailing slash.",
            "Server",
        )
        self.token = ask_text(
            b,
            questions,
            TOKEN_PLACEHOLDER,
            "Device token: run `photo-relay device add my-iphone` on the server and paste "
            "what it prints.",
            "Token",
        )

    def request(
        self, b: Builder, output: str | None, path: tuple[str | Attachment, ...], **body: Any
    ) -> Output:
        """POST to the service; the reply (JSON, or an error body) is the action's output."""
        return b.add(
            "downloadurl",
            output=output,
            WFURL=text(self.server.ref(), *path),
            WFHTTPMethod="POST",
            ShowHeaders=True,
            WFHTTPHeaders=fields(text_field("Authorization", "Bearer ", self.token.ref())),
            **body,
        )


def notify(b: Builder, title: str, *body: str | Attachment) -> None:
    b.add(
        "notification",
        WFNotificationActionTitle=title,
        WFNotificationActionBody=text(*body),
        WFNotificationActionSound=False,
    )


def finish_run(b: Builder, link: Connection, run_path: str, run: Attachment, title: str) -> None:
    """Close the run on the service and show its one sentence: every shortcut ends so."""
    report = link.request(
        b,
        "Run Report",
        (run_path, run, "/finish"),
        WFHTTPBodyType="JSON",
        WFJSONValues=fields(text_field("ended", "yes")),
    )
    notify(b, title, report.ref(key("message")))


def album_is(album: str) -> Plist:
    """A Find Photos row "Album is `album`" (operator 4, the album as an enumeration)."""
    return {
        "Operator": 4,
        "Property": "Album",
        "Removable": True,
        "Values": {
            "Enumeration": {"Value": album, "WFSerializationType": "WFStringSubstitutableState"}
        },
    }


def find_page(b: Builder, walk: str) -> None:
    """Find Photos for the page `Next` describes, by Date Taken or by Last Modified Date.

    Date filters compare whole days in the phone's zone: "after the day before D" is
    "on or after D"; the service chose D and the limit so that whole days are listed.
    """
    b.add(
        "filter.photos",
        WFContentItemInputParameter="Library",
        WFContentItemFilter={
            "WFSerializationType": "WFContentPredicateTableTemplate",
            "Value": {
                "WFActionParameterFilterPrefix": 1,
                "WFContentPredicateBoundedDate": False,
                "WFActionParameterFilterTemplates": [
                    {
                        "Operator": 2,
                        "Property": walk,
                        "Removable": True,
                        "Values": {"Date": attachment(variable("Next", key("after"), as_date()))},
                    }
                ],
            },
        },
        WFContentItemSortProperty=walk,
        WFContentItemSortOrder="Oldest First",
        WFContentItemLimitEnabled=True,
        WFContentItemLimitNumber=attachment(variable("Next", key("take"), as_number())),
    )


def photo(*aggrandizements: dict[str, Any]) -> Attachment:
    return variable("Repeat Item 2", *aggrandizements)


def walk_one_page(b: Builder, link: Connection, run: Attachment, album: str) -> None:
    """List the page to the service, then hash and upload each photo it asks for, and
    collect those it says are verified and not yet in the album."""
    with if_block(b, variable("Next", key("walk")), IS, text("taken"), output="Page") as which:
        find_page(b, "Date Taken")
        which.otherwise()
        find_page(b, "Last Modified Date")
    assert which.result is not None
    page = which.result
    listing = b.block("repeat.each", "Repeat Results", WFInput=attachment(page.ref()))
    with listing:
        b.add(
            "dictionary",
            WFItems=fields(
                text_field("name", photo(detail("Name"))),
                text_field("taken", photo(detail("Date Taken"), iso_8601())),
                text_field("modified", photo(detail("Last Modified Date"), iso_8601())),
                # A number field: File Size as bytes, never the text "2.1 MB".
                number_field("size", photo(detail("File Size"))),
                # For the ledger (a Live Photo's still only) and the album (never twice).
                text_field("kind", photo(detail("Photo Type"))),
                text_field("albums", photo(detail("Album"))),
            ),
        )
    assert listing.result is not None
    reply = link.request(
        b,
        "Decisions Reply",
        (RUN_PATH, run, "/candidates"),
        WFHTTPBodyType="JSON",
        WFJSONValues=fields(
            text_field("candidates", listing.result.ref()), text_field("album", album)
        ),
    )
    b.add("setvariable", WFVariableName="Next", WFInput=attachment(reply.ref()))
    with b.block("repeat.each", WFInput=attachment(page.ref())):
        decision = b.add(
            "getvalueforkey",
            output="Decision",
            WFInput=attachment(variable("Next", key("decisions"))),
            WFGetDictionaryValueType="Value",
            WFDictionaryKey=text(variable("Repeat Index 2")),
        )
        with if_block(b, decision.ref(), IS, text("home")):
            b.add("appendvariable", WFVariableName="Safe", WFInput=attachment(photo()))
        with if_block(b, decision.ref(), IS, text("send")):
            # Reading the photo may download it from iCloud; the service has already
            # noted that it asked for it, so a failure here is seen and the photo waits.
            digest = b.add("hash", output="Hash", WFInput=attachment(photo()), WFHashType="SHA256")
            offer = link.request(
                b,
                "Offer",
                (RUN_PATH, run, "/photos/", variable("Repeat Index 2"), "/hash"),
                WFHTTPBodyType="JSON",
                WFJSONValues=fields(text_field("sha256", digest.ref())),
            )
            with if_block(b, offer.ref(key("upload")), IS, text("yes")):
                link.request(
                    b,
                    None,
                    (RUN_PATH, run, "/photos/", variable("Repeat Index 2"), "/file"),
                    WFHTTPBodyType="Form",
                    WFFormValues=fields(
                        file_field("file", photo()),
                        text_field("sha256", digest.ref()),
                    ),
                )


def build_backup(album: str = DEFAULT_ALBUM) -> Plist:
    """The Wi-Fi automation's shortcut; shortcuts/README.md gives the same steps in words."""
    b = Builder("backup")
    questions: list[Plist] = []
    link = Connection(b, questions)
    home = ask_text(
        b,
        questions,
        WIFI_PLACEHOLDER,
        "Name of your home Wi-Fi, exactly as the phone shows it. On any other network "
        "photo-relay notes that the automation ran, and nothing is sent.",
        "Home Wi-Fi",
    )
    network = b.add(
        "getwifi",
        output="Network Name",
        WFNetworkDetailsNetwork="Wi-Fi",
        WFWiFiDetail="Network Name",
    )
    plan = link.request(
        b,
        "Plan",
        ("/v1/backup/runs",),
        WFHTTPBodyType="JSON",
        WFJSONValues=fields(
            text_field("kind", "backup"),
            text_field("network", network.ref()),
            text_field("home", home.ref()),
        ),
    )
    run = plan.ref(key("run_id"))
    with if_block(b, plan.ref(key("go")), IS, text("yes")) as started:
        b.add("setvariable", WFVariableName="Next", WFInput=attachment(plan.ref()))
        pages = b.block("repeat.count", WFRepeatCount=PAGE_TURNS)
        with pages, if_block(b, variable("Next", key("more")), IS, text("yes")):
            walk_one_page(b, link, run, album)
        finish_run(b, link, RUN_PATH, run, "Photo backup")
        # Last, so that a missing album can never stop a backup: everything is sent and
        # the run is closed before Save to Photo Album could fail.
        with if_block(b, variable("Next", key("album")), IS, text("yes")):
            b.add(
                "savetocameraroll",
                WFInput=attachment(variable("Safe")),
                WFCameraRollSelectedGroup=album,
            )
        started.otherwise()
        # `away` is the intended quiet case (the service has noted it); anything else is
        # an error reply, which always carries error.message.
        with if_block(b, plan.ref(key("go")), IS_NOT, text("away")):
            notify(
                b,
                "Photo backup did not start",
                "photo-relay answered: ",
                plan.ref(key("error.message")),
                " Nothing was sent. Check the server address and token in the shortcut.",
            )
    return envelope(b, questions, "Back up to photo-relay", share_sheet=False)


def build_share() -> Plist:
    """The share-sheet shortcut: upload every shared photo, video or file, then one notification."""
    b = Builder("share")
    questions: list[Plist] = []
    link = Connection(b, questions)
    plan = link.request(
        b,
        "Run Start",
        ("/v1/backup/runs",),
        WFHTTPBodyType="JSON",
        WFJSONValues=fields(text_field("kind", "share")),
    )
    run = plan.ref(key("run_id"))
    with if_block(b, plan.ref(key("go")), IS, text("yes")) as started:
        with b.block("repeat.each", WFInput=attachment(shortcut_input())):
            item = variable("Repeat Item")
            name = b.add("getitemname", output="Item Name", WFInput=attachment(item))
            digest = b.add("hash", output="Hash", WFInput=attachment(item), WFHashType="SHA256")
            link.request(
                b,
                None,
                (RUN_PATH, run, "/files"),
                WFHTTPBodyType="Form",
                WFFormValues=fields(
                    file_field("file", item),
                    text_field("name", name.ref()),
                    text_field("sha256", digest.ref()),
                ),
            )
        finish_run(b, link, RUN_PATH, run, "Sent to photo-relay")
        started.otherwise()
        notify(
            b,
            "Not sent to photo-relay",
            "photo-relay answered: ",
            plan.ref(key("error.message")),
            " Check the server address and token in the shortcut.",
        )
    return envelope(b, questions, "Send to photo-relay", share_sheet=True)


INPUT_CLASSES = [
    "WFPhotoMediaContentItem",
    "WFImageContentItem",
    "WFAVAssetContentItem",
    "WFGenericFileContentItem",
]


def envelope(b: Builder, questions: list[Plist], name: str, *, share_sheet: bool) -> Plist:
    plist: Plist = {
        "WFWorkflowName": name,
        "WFWorkflowClientVersion": CLIENT_VERSION,
        "WFWorkflowMinimumClientVersion": MINIMUM_CLIENT_VERSION,
        "WFWorkflowMinimumClientVersionString": str(MINIMUM_CLIENT_VERSION),
        "WFWorkflowIcon": {
            "WFWorkflowIconStartColor": 4282601983 if share_sheet else 463140863,
            "WFWorkflowIconGlyphNumber": 59708 if share_sheet else 61459,
        },
        "WFWorkflowImportQuestions": questions,
        "WFWorkflowInputContentItemClasses": INPUT_CLASSES if share_sheet else [],
        "WFWorkflowOutputContentItemClasses": [],
        "WFWorkflowTypes": ["ActionExtension"] if share_sheet else [],
        "WFWorkflowHasShortcutInputVariables": share_sheet,
        "WFWorkflowHasOutputFallback": False,
        "WFQuickActionSurfaces": [],
        "WFWorkflowActions": b.actions,
    }
    if share_sheet:
        plist["WFWorkflowNoInputBehavior"] = {
            "Name": "WFWorkflowNoInputBehaviorShowError",
            "Parameters": {
                "Error": "Share photos, videos or files to 'Send to photo-relay' from the "
                "share sheet."
            },
        }
    return plist


def build_free_up(album: str = DEFAULT_ALBUM) -> Plist:
    """Free up space, run by hand: offer, hash and ask about each photo of the album, then
    one Delete Photos (iOS asks, and keeps them 30 days in Recently Deleted)."""
    b = Builder("free-up")
    questions: list[Plist] = []
    link = Connection(b, questions)
    plan = link.request(
        b,
        "Plan",
        (FREE_UP_PATH.rstrip("/"),),
        WFHTTPBodyType="JSON",
        WFJSONValues=fields(text_field("kind", "free-up")),
    )
    run = plan.ref(key("run_id"))
    with if_block(b, plan.ref(key("go")), IS, text("yes")) as started:
        found = b.add(
            "filter.photos",
            output="Album Photos",
            WFContentItemInputParameter="Library",
            WFContentItemFilter={
                "WFSerializationType": "WFContentPredicateTableTemplate",
                "Value": {
                    "WFActionParameterFilterPrefix": 1,
                    "WFContentPredicateBoundedDate": False,
                    "WFActionParameterFilterTemplates": [album_is(album)],
                },
            },
            WFContentItemSortProperty="Date Taken",
            WFContentItemSortOrder="Oldest First",
            WFContentItemLimitEnabled=False,
        )
        with b.block("repeat.each", WFInput=attachment(found.ref())):
            item = variable("Repeat Item")
            look = link.request(
                b,
                "Look",
                (FREE_UP_PATH, run, "/photos/", variable("Repeat Index")),
                WFHTTPBodyType="JSON",
                WFJSONValues=fields(
                    text_field("name", variable("Repeat Item", detail("Name"))),
                    text_field("taken", variable("Repeat Item", detail("Date Taken"), iso_8601())),
                    text_field(
                        "modified",
                        variable("Repeat Item", detail("Last Modified Date"), iso_8601()),
                    ),
                    number_field("size", variable("Repeat Item", detail("File Size"))),
                    text_field("kind", variable("Repeat Item", detail("Photo Type"))),
                    text_field("favorite", variable("Repeat Item", detail("Is Favorite"))),
                ),
            )
            with if_block(b, look.ref(key("hash")), IS, text("yes")):
                digest = b.add("hash", output="Hash", WFInput=attachment(item), WFHashType="SHA256")
                answer = link.request(
                    b,
                    "Answer",
                    (FREE_UP_PATH, run, "/photos/", variable("Repeat Index"), "/hash"),
                    WFHTTPBodyType="JSON",
                    WFJSONValues=fields(text_field("sha256", digest.ref())),
                )
                with if_block(b, answer.ref(key("delete")), IS, text("yes")):
                    b.add("appendvariable", WFVariableName="To Delete", WFInput=attachment(item))
        review = link.request(
            b,
            "Review",
            (FREE_UP_PATH, run, "/review"),
            WFHTTPBodyType="JSON",
            WFJSONValues=fields(text_field("step", "review")),
        )
        with if_block(b, review.ref(key("delete")), IS, text("yes")):
            # iOS asks before deleting; cancelling stops the shortcut, and then the
            # service never hears "finish" and counts nothing as removed.
            b.add("deletephotos", photos=attachment(variable("To Delete")))
        finish_run(b, link, FREE_UP_PATH, run, "Free up space")
        started.otherwise()
        notify(
            b,
            "Free up space did not start",
            "photo-relay answered: ",
            plan.ref(key("error.message")),
            " Nothing was deleted. Check the server address and token in the shortcut.",
        )
    return envelope(b, questions, "Free up space", share_sheet=False)


def build_all(album: str = DEFAULT_ALBUM) -> dict[str, Plist]:
    return {
        BACKUP_FILE: build_backup(album),
        SHARE_FILE: build_share(),
        FREE_UP_FILE: build_free_up(album),
    }


def shortcut_bytes(plist: Plist) -> bytes:
    """XML, keys sorted: readable in a diff, and accepted by `shortcuts sign`."""
    return plistlib.dumps(plist, fmt=plistlib.FMT_XML, sort_keys=True)


def write_all(folder: Path) -> list[Path]:
    """Write the shortcuts (unsigned) into `folder`; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, plist in build_all().items():
        path = folder / filename
        data = shortcut_bytes(plist)
        temp = path.with_name(path.name + ".tmp")
        temp.write_bytes(data)
        temp.replace(path)
        written.append(path)
    return written
