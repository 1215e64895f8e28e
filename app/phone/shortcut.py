"""Builds the two bundled Apple Shortcuts as unsigned plists (plistlib), deterministically.

"Back up to photo-relay" runs from a Wi-Fi automation and walks the photo library in pages
the service hands out (`/v1/backup/...`); "Send to photo-relay" uploads what is shared to it.
Nothing personal is baked in: server address, device token and home Wi-Fi name are import
questions. The file format is described in shared/shortcuts-format.md; tests validate it.
"""

from __future__ import annotations

import plistlib
from pathlib import Path
from typing import Any

from app.phone.plist import (
    HAS_NO_VALUE,
    IS,
    IS_NOT,
    Attachment,
    Builder,
    Output,
    Plist,
    attachment,
    fields,
    file_field,
    if_block,
    shortcut_input,
    text,
    text_field,
    variable,
)

__all__ = [
    "BACKUP_FILE",
    "SHARE_FILE",
    "build_all",
    "build_backup",
    "build_share",
    "shortcut_bytes",
    "write_all",
]

BACKUP_FILE = "Back up to photo-relay.shortcut"
SHARE_FILE = "Send to photo-relay.shortcut"

CLIENT_VERSION = "2302.0.4"
MINIMUM_CLIENT_VERSION = 900

# Import questions ask for these; each is the plain-string value of one Text action.
SERVER_PLACEHOLDER = "https://photo-relay.local:8000"
TOKEN_PLACEHOLDER = "paste-the-device-token-here"
WIFI_PLACEHOLDER = "My Home Wi-Fi"


def ask_text(b: Builder, questions: list[Plist], value: str, question: str, name: str) -> None:
    """A Text action whose plain value an import question replaces, kept in a variable."""
    questions.append(
        {
            "ActionIndex": b.index(),
            "Category": "Parameter",
            "ParameterKey": "WFTextActionText",
            "Text": question,
            "DefaultValue": value,
        }
    )
    answer = b.add("gettext", output=f"{name} answer", WFTextActionText=value)
    b.add("setvariable", WFVariableName=name, WFInput=attachment(answer.ref()))


def ask_connection(b: Builder, questions: list[Plist]) -> None:
    ask_text(
        b,
        questions,
        SERVER_PLACEHOLDER,
        "Address of your photo-relay, as reachable from the phone at home "
        "(e.g. http://192.168.1.20:8000), without a trailing slash.",
        "Server",
    )
    ask_text(
        b,
        questions,
        TOKEN_PLACEHOLDER,
        "Device token: run `photo-relay device add my-iphone` on the server and paste what "
        "it prints.",
        "Token",
    )


def auth_headers() -> Plist:
    return fields(text_field("Authorization", "Bearer ", variable("Token")))


def request(b: Builder, output: str, path: tuple[str | Attachment, ...], **body: Any) -> Output:
    """POST to the service; the reply (JSON, or an error body) is the action's output."""
    return b.add(
        "downloadurl",
        output=output,
        WFURL=text(variable("Server"), *path),
        WFHTTPMethod="POST",
        ShowHeaders=True,
        WFHTTPHeaders=auth_headers(),
        **body,
    )


def value_of(b: Builder, source: Output, key: str | Plist, output: str) -> Output:
    return b.add(
        "getvalueforkey",
        output=output,
        WFInput=attachment(source.ref()),
        WFGetDictionaryValueType="Value",
        WFDictionaryKey=key,
    )


def notify(b: Builder, title: str, *body: str | Attachment) -> None:
    b.add(
        "notification",
        WFNotificationActionTitle=title,
        WFNotificationActionBody=text(*body),
        WFNotificationActionSound=False,
    )


RUN_PATH = "/v1/backup/runs/"


def finish_and_notify(b: Builder, title: str) -> None:
    """Close the run on the service, show the sentence it composes, stop."""
    report = request(
        b,
        "Run Report",
        (RUN_PATH, variable("Run"), "/finish"),
        WFHTTPBodyType="JSON",
        WFJSONValues=fields(),
    )
    message = value_of(b, report, "message", "Report Message")
    notify(b, title, message.ref())
    b.add("exit")


def fail_unless(b: Builder, reply: Output, key: str, title: str, advice: str) -> None:
    """If `reply` lacks `key`, report the service's error message, notify it and stop."""
    expected = value_of(b, reply, key, f"{reply.name} {key}")
    with if_block(b, expected.ref(), HAS_NO_VALUE, None):
        problem = value_of(b, reply, "error.message", "Error Message")
        request(
            b,
            "Error Report",
            (RUN_PATH, variable("Run"), "/finish"),
            WFHTTPBodyType="JSON",
            WFJSONValues=fields(text_field("error", problem.ref())),
        )
        notify(b, title, "photo-relay answered: ", problem.ref(), " ", advice)
        b.add("exit")


def photo_detail(b: Builder, photo: Attachment, detail: str, output: str) -> Output:
    return b.add(
        "properties.images",
        output=output,
        WFInput=attachment(photo),
        WFContentItemPropertyName=detail,
    )


def photo_facts(b: Builder, photo: Attachment) -> tuple[Output, Output, Output]:
    """Name, capture date (ISO 8601) and size: what the service matches candidates on."""
    name = photo_detail(b, photo, "Name", "Photo Name")
    taken = photo_detail(b, photo, "Date Taken", "Photo Date Taken")
    iso = b.add(
        "format.date",
        output="Photo Captured At",
        WFDate=attachment(taken.ref()),
        WFDateFormatStyle="ISO 8601",
        WFISO8601IncludeTime=True,
    )
    size = photo_detail(b, photo, "File Size", "Photo File Size")
    return name, iso, size


def find_page(b: Builder) -> Output:
    """The next page: photos and videos taken after `After`, oldest first, `Batch Size` of them."""
    after = b.add(
        "date",
        output="Window Start",
        WFDateActionMode="Specified Date",
        WFDateActionDate=text(variable("After")),
    )
    return b.add(
        "filter.photos",
        output="Page",
        WFContentItemInputParameter="Library",
        WFContentItemFilter={
            "WFSerializationType": "WFContentPredicateTableTemplate",
            "Value": {
                "WFActionParameterFilterPrefix": 1,
                "WFContentPredicateBoundedDate": False,
                "WFActionParameterFilterTemplates": [
                    {
                        "Operator": 2,
                        "Property": "Date Taken",
                        "Removable": True,
                        "Values": {"Date": attachment(after.ref())},
                    }
                ],
            },
        },
        WFContentItemSortProperty="Date Taken",
        WFContentItemSortOrder="Oldest First",
        WFContentItemLimitEnabled=True,
        WFContentItemLimitNumber=attachment(variable("Batch Size")),
    )


def build_backup() -> Plist:
    """The Wi-Fi automation's shortcut; see shortcuts/README.md for the same steps in words."""
    b = Builder("backup")
    questions: list[Plist] = []
    b.add(
        "comment",
        WFCommentActionText="Back up to photo-relay. Run it from a personal automation "
        "'When joining Wi-Fi'. The service decides what to look at and what to send; this "
        "shortcut only reports what the library holds and uploads what is asked for.",
    )
    ask_connection(b, questions)
    ask_text(
        b,
        questions,
        WIFI_PLACEHOLDER,
        "Name of your home Wi-Fi, exactly as the phone shows it. On any other network "
        "this shortcut does nothing.",
        "Home Wi-Fi",
    )
    network = b.add(
        "getwifi",
        output="Network Name",
        WFNetworkDetailsNetwork="Wi-Fi",
        WFWiFiDetail="Network Name",
    )
    with if_block(b, network.ref(), IS_NOT, text(variable("Home Wi-Fi"))):
        b.add("exit")

    plan = request(
        b,
        "Backup Plan",
        ("/v1/backup/runs",),
        WFHTTPBodyType="JSON",
        WFJSONValues=fields(text_field("kind", "backup"), text_field("network", network.ref())),
    )
    run = value_of(b, plan, "run_id", "Run ID")
    with if_block(b, run.ref(), HAS_NO_VALUE, None):
        problem = value_of(b, plan, "error.message", "Error Message")
        notify(
            b,
            "Photo backup did not start",
            "photo-relay answered: ",
            problem.ref(),
            " Nothing was sent. Check the server address and token in the shortcut.",
        )
        b.add("exit")
    b.add("setvariable", WFVariableName="Run", WFInput=attachment(run.ref()))
    for key, label in (("batch_size", "Batch Size"), ("after", "After")):
        value = value_of(b, plan, key, f"Plan {label}")
        b.add("setvariable", WFVariableName=label, WFInput=attachment(value.ref()))
    pages = value_of(b, plan, "max_batches", "Plan Max Batches")

    with b.block("repeat.count", WFRepeatCount=attachment(pages.ref())):
        page = find_page(b)
        # The end of this Repeat publishes "Repeat Results": one Candidate per photo.
        candidates = b.block("repeat.each", "Repeat Results", WFInput=attachment(page.ref()))
        with candidates:
            name, iso, size = photo_facts(b, variable("Repeat Item 2"))
            b.add(
                "dictionary",
                output="Candidate",
                WFItems=fields(
                    text_field("name", name.ref()),
                    text_field("captured_at", iso.ref()),
                    # Text, like the upload's size field: both go through the same
                    # conversion on the phone, so they always compare equal.
                    text_field("size", size.ref()),
                ),
            )
        assert candidates.result is not None
        listed = candidates.result
        check = request(
            b,
            "Decisions Reply",
            (RUN_PATH, variable("Run"), "/candidates"),
            WFHTTPBodyType="JSON",
            WFJSONValues=fields(
                text_field("after", variable("After")),
                text_field("candidates", listed.ref()),
            ),
        )
        fail_unless(
            b,
            check,
            "decisions",
            "Photo backup stopped",
            "Nothing is lost: the next run carries on from here.",
        )
        decisions = value_of(b, check, "decisions", "Decisions")
        with b.block("repeat.each", WFInput=attachment(page.ref())):
            decision = value_of(b, decisions, text(variable("Repeat Index 2")), "Decision")
            with if_block(b, decision.ref(), IS, text("send")):
                name, iso, size = photo_facts(b, variable("Repeat Item 2"))
                sent = request(
                    b,
                    "Upload Reply",
                    (RUN_PATH, variable("Run"), "/files"),
                    WFHTTPBodyType="Form",
                    WFFormValues=fields(
                        file_field("file", variable("Repeat Item 2")),
                        text_field("name", name.ref()),
                        text_field("captured_at", iso.ref()),
                        text_field("size", size.ref()),
                    ),
                )
                fail_unless(
                    b,
                    sent,
                    "items",
                    "Photo backup stopped",
                    "Nothing is lost: what was sent is safe, the next run sends the rest.",
                )
        following = value_of(b, check, "next_after", "Next Window Start")
        with if_block(b, following.ref(), HAS_NO_VALUE, None):
            finish_and_notify(b, "Photo backup")
        b.add("setvariable", WFVariableName="After", WFInput=attachment(following.ref()))
    finish_and_notify(b, "Photo backup")
    return envelope(b, questions, "Back up to photo-relay", share_sheet=False)


def build_share() -> Plist:
    """The share-sheet shortcut: upload every shared photo, video or file, then one notification."""
    b = Builder("share")
    questions: list[Plist] = []
    b.add(
        "comment",
        WFCommentActionText="Send to photo-relay. Share photos, videos or files to it; each "
        "is uploaded whole and photo-relay answers which were new.",
    )
    ask_connection(b, questions)
    plan = request(
        b,
        "Run Start",
        ("/v1/backup/runs",),
        WFHTTPBodyType="JSON",
        WFJSONValues=fields(text_field("kind", "share")),
    )
    run = value_of(b, plan, "run_id", "Run ID")
    with if_block(b, run.ref(), HAS_NO_VALUE, None):
        problem = value_of(b, plan, "error.message", "Error Message")
        notify(
            b,
            "Not sent to photo-relay",
            "photo-relay answered: ",
            problem.ref(),
            " Check the server address and token in the shortcut.",
        )
        b.add("exit")
    b.add("setvariable", WFVariableName="Run", WFInput=attachment(run.ref()))
    with b.block("repeat.each", WFInput=attachment(shortcut_input())):
        name = b.add("getitemname", output="Item Name", WFInput=attachment(variable("Repeat Item")))
        sent = request(
            b,
            "Upload Reply",
            (RUN_PATH, variable("Run"), "/files"),
            WFHTTPBodyType="Form",
            WFFormValues=fields(
                file_field("file", variable("Repeat Item")),
                text_field("name", name.ref()),
            ),
        )
        fail_unless(
            b,
            sent,
            "items",
            "Not everything was sent",
            "What was sent before is safe; share the rest again.",
        )
    finish_and_notify(b, "Sent to photo-relay")
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


def build_all() -> dict[str, Plist]:
    return {BACKUP_FILE: build_backup(), SHARE_FILE: build_share()}


def shortcut_bytes(plist: Plist) -> bytes:
    """XML, keys sorted: readable in a diff, and accepted by `shortcuts sign`."""
    return plistlib.dumps(plist, fmt=plistlib.FMT_XML, sort_keys=True)


def write_all(folder: Path) -> list[Path]:
    """Write both shortcuts (unsigned) into `folder`; returns the paths written."""
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
