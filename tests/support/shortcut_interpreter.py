"""A small Shortcuts interpreter for exactly the actions our generated shortcuts use.

It runs the generated plist itself: import answers are written into the parameters they
target, control flow follows GroupingIdentifier/WFControlFlowMode, values flow through
magic variables (OutputUUID) and named variables, and Get Contents of URL makes real HTTP
requests. The phone side (Wi-Fi, photo library, notifications) is a `Phone` object. Where
Shortcuts' behaviour is an assumption, the method says so; anything else is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

__all__ = ["Asset", "Interrupted", "Phone", "Request", "run_shortcut"]

OBJECT = "\ufffc"


@dataclass
class Asset:
    """One photo or video in the fake library (or one shared item)."""

    name: str  # as Shortcuts shows it: without extension
    extension: str
    taken: datetime
    data: bytes

    @property
    def filename(self) -> str:
        return f"{self.name}.{self.extension}"


@dataclass
class Request:
    method: str
    url: str
    status: int
    json_body: Any = None
    uploaded: str | None = None  # file name, when the request carried a file


@dataclass
class Phone:
    wifi: str | None
    library: list[Asset] = field(default_factory=list)
    notifications: list[tuple[str, str]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def uploads(self) -> list[str]:
        return [r.uploaded for r in self.requests if r.uploaded]


class Interrupted(Exception):
    """iOS ended the run (time limit, phone left the Wi-Fi): nothing more happens."""


class Stopped(Exception):
    """Stop This Shortcut."""


class Unsupported(Exception):
    """The plist uses something this interpreter (and our format table) does not know."""


def utf16_offsets(string: str) -> dict[int, int]:
    """UTF-16 offset -> index into `string`, for every character."""
    offsets, position = {}, 0
    for index, char in enumerate(string):
        offsets[position] = index
        position += 2 if ord(char) > 0xFFFF else 1
    return offsets


@dataclass
class _Frame:
    group: str
    start: int
    items: list[Any]
    index: int = 0
    results: list[Any] = field(default_factory=list)


class Interpreter:
    def __init__(
        self,
        plist: dict[str, Any],
        phone: Phone,
        answers: list[str],
        http: httpx.Client,
        shortcut_input: list[Any] | None = None,
        cut_after_uploads: int | None = None,
        before_request: Callable[[Phone], None] | None = None,
    ) -> None:
        self.actions = [
            (a["WFWorkflowActionIdentifier"], dict(a["WFWorkflowActionParameters"]))
            for a in plist["WFWorkflowActions"]
        ]
        questions = plist["WFWorkflowImportQuestions"]
        if len(answers) != len(questions):
            raise Unsupported(f"{len(questions)} import questions, {len(answers)} answers")
        for question, answer in zip(questions, answers, strict=True):
            self.actions[question["ActionIndex"]][1][question["ParameterKey"]] = answer
        self.phone = phone
        self.http = http
        self.input = shortcut_input or []
        self.cut_after_uploads = cut_after_uploads
        self.before_request = before_request
        self.outputs: dict[str, Any] = {}
        self.variables: dict[str, Any] = {}
        self.frames: list[_Frame] = []
        self.groups = self._groups()
        self.last_output: Any = None

    def _groups(self) -> dict[str, dict[int, int]]:
        groups: dict[str, dict[int, int]] = {}
        for index, (_, params) in enumerate(self.actions):
            if "GroupingIdentifier" in params:
                mode = params["WFControlFlowMode"]
                groups.setdefault(params["GroupingIdentifier"], {})[mode] = index
        return groups

    # -- values --------------------------------------------------------------------------

    def resolve(self, reference: dict[str, Any]) -> Any:
        if reference.get("Aggrandizements"):
            raise Unsupported("aggrandizements are not used by our shortcuts")
        kind = reference["Type"]
        if kind == "ActionOutput":
            uuid = reference["OutputUUID"]
            if uuid not in self.outputs:
                raise Unsupported(f"{reference['OutputName']!r} is used before it was set")
            return self.outputs[uuid]
        if kind == "Variable":
            name = reference["VariableName"]
            if name not in self.variables:
                raise Unsupported(f"variable {name!r} is used before it was set")
            return self.variables[name]
        if kind == "ExtensionInput":
            return self.input
        raise Unsupported(f"attachment type {kind}")

    def value(self, parameter: Any) -> Any:
        """A parameter's value: plain, a text token (rendered as text) or an attachment."""
        if not isinstance(parameter, dict) or "WFSerializationType" not in parameter:
            return parameter
        kind = parameter["WFSerializationType"]
        if kind == "WFTextTokenAttachment":
            return self.resolve(parameter["Value"])
        if kind == "WFTextTokenString":
            return self.render(parameter["Value"])
        raise Unsupported(f"serialization {kind}")

    def render(self, token: dict[str, Any]) -> str:
        string = token["string"]
        at = utf16_offsets(string)
        inserts = {}
        for key, reference in token.get("attachmentsByRange", {}).items():
            location = int(key.strip("{}").split(",")[0])
            if string[at[location]] != OBJECT:
                raise Unsupported(f"attachment at {location} is not on U+FFFC")
            inserts[at[location]] = self.as_text(self.resolve(reference))
        return "".join(inserts.get(i, c) for i, c in enumerate(string))

    def as_text(self, value: Any) -> str:
        """Shortcuts' coercion to text (assumed: a dictionary becomes JSON, a list one
        item per line). Dates and photos would become localised or odd text on a phone,
        so using them as text here is an error in the generator."""
        if value is None:
            return ""
        if isinstance(value, bool):
            return "Yes" if value else "No"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, str | int | float):
            return str(value)
        if isinstance(value, dict):
            return json.dumps(value, ensure_ascii=False)
        if isinstance(value, list):
            return "\n".join(self.as_text(v) for v in value)
        raise Unsupported(f"{type(value).__name__} used as text")

    def fields(self, parameter: dict[str, Any]) -> list[tuple[str, int, Any]]:
        if parameter["WFSerializationType"] != "WFDictionaryFieldValue":
            raise Unsupported("dictionary field serialization")
        items = []
        for item in parameter["Value"]["WFDictionaryFieldValueItems"]:
            kind, key = item["WFItemType"], self.value(item["WFKey"])
            if kind == 0:
                items.append((key, kind, self.value(item["WFValue"])))
            elif kind == 5:
                wrapped = item["WFValue"]
                if wrapped["WFSerializationType"] != "WFTokenAttachmentParameterState":
                    raise Unsupported("file field serialization")
                items.append((key, kind, self.value(wrapped["Value"])))
            else:
                raise Unsupported(f"dictionary item type {kind}")
        return items

    # -- running -------------------------------------------------------------------------

    def run(self) -> None:
        pc = 0
        try:
            while pc < len(self.actions):
                pc = self.step(pc)
        except Stopped:
            pass

    def step(self, pc: int) -> int:
        identifier, params = self.actions[pc]
        name = identifier.removeprefix("is.workflow.actions.")
        if "GroupingIdentifier" in params:
            return self.control(name, pc, params)
        handler = getattr(self, "do_" + name.replace(".", "_"), None)
        if handler is None:
            raise Unsupported(f"action {identifier}")
        output = handler(params)
        self.last_output = output
        if "UUID" in params:
            self.outputs[params["UUID"]] = output
        return pc + 1

    def control(self, name: str, pc: int, params: dict[str, Any]) -> int:
        group = self.groups[params["GroupingIdentifier"]]
        mode = params["WFControlFlowMode"]
        if name == "conditional":
            if mode == 0:
                if self.condition(params):
                    return pc + 1
                return (group[1] if 1 in group else group[2]) + 1
            if mode == 1:
                return group[2] + 1
            return pc + 1
        if mode == 0:
            if name == "repeat.count":
                items = list(range(int(float(self.as_text(self.value(params["WFRepeatCount"]))))))
            elif name == "repeat.each":
                found = self.value(params["WFInput"])
                items = found if isinstance(found, list) else [found]
            else:
                raise Unsupported(name)
            frame = _Frame(params["GroupingIdentifier"], pc, items)
            if not items:
                self.finish_loop(frame, group[2])
                return group[2] + 1
            self.frames.append(frame)
            self.enter(frame)
            return pc + 1
        frame = self.frames[-1]
        frame.results.append(self.last_output)
        frame.index += 1
        if frame.index < len(frame.items):
            self.enter(frame)
            return frame.start + 1
        self.frames.pop()
        self.finish_loop(frame, pc)
        return pc + 1

    def enter(self, frame: _Frame) -> None:
        # Shortcuts numbers the loop variables of nested repeats: "Repeat Item 2" inside
        # a second-level loop (an assumption this interpreter and the generator share).
        depth = len(self.frames)
        suffix = "" if depth == 1 else f" {depth}"
        self.variables["Repeat Index" + suffix] = frame.index + 1
        self.variables["Repeat Item" + suffix] = frame.items[frame.index]

    def finish_loop(self, frame: _Frame, end: int) -> None:
        params = self.actions[end][1]
        if "UUID" in params:
            self.outputs[params["UUID"]] = frame.results
        self.last_output = frame.results

    def condition(self, params: dict[str, Any]) -> bool:
        wrapper = params["WFInput"]
        if wrapper.get("Type") != "Variable":
            raise Unsupported("If input")
        subject = self.value(wrapper["Variable"])
        code = params["WFCondition"]
        if code in (100, 101):
            has = subject not in (None, "", [], {})
            return has if code == 100 else not has
        operand = self.value(params["WFConditionalActionString"])
        if code == 4:
            return self.as_text(subject) == operand
        if code == 5:
            return self.as_text(subject) != operand
        raise Unsupported(f"condition {code}")

    # -- actions -------------------------------------------------------------------------

    def do_comment(self, params: dict[str, Any]) -> None:
        return None

    def do_exit(self, params: dict[str, Any]) -> None:
        raise Stopped

    def do_gettext(self, params: dict[str, Any]) -> str:
        return str(self.value(params["WFTextActionText"]))

    def do_setvariable(self, params: dict[str, Any]) -> Any:
        value = self.value(params["WFInput"])
        self.variables[params["WFVariableName"]] = value
        return value

    def do_getwifi(self, params: dict[str, Any]) -> str | None:
        if params["WFNetworkDetailsNetwork"] != "Wi-Fi" or params["WFWiFiDetail"] != "Network Name":
            raise Unsupported("network detail")
        return self.phone.wifi

    def do_getvalueforkey(self, params: dict[str, Any]) -> Any:
        if params["WFGetDictionaryValueType"] != "Value":
            raise Unsupported("dictionary value type")
        current = self.value(params["WFInput"])
        for part in str(self.value(params["WFDictionaryKey"])).split("."):
            current = current.get(part) if isinstance(current, dict) else None
        return current

    def do_date(self, params: dict[str, Any]) -> datetime:
        if params["WFDateActionMode"] != "Specified Date":
            raise Unsupported("date mode")
        text = str(self.value(params["WFDateActionDate"])).replace("Z", "+00:00")
        return datetime.fromisoformat(text)

    def do_format_date(self, params: dict[str, Any]) -> str:
        if params["WFDateFormatStyle"] != "ISO 8601" or not params["WFISO8601IncludeTime"]:
            raise Unsupported("date format")
        moment = self.value(params["WFDate"])
        if not isinstance(moment, datetime):
            raise Unsupported("Format Date needs a date")
        return moment.isoformat(timespec="seconds")

    def do_filter_photos(self, params: dict[str, Any]) -> list[Asset]:
        if params["WFContentItemInputParameter"] != "Library":
            raise Unsupported("Find Photos input")
        found = list(self.phone.library)
        table = params["WFContentItemFilter"]["Value"]
        if table["WFActionParameterFilterPrefix"] != 1:
            raise Unsupported("filter prefix")
        for row in table["WFActionParameterFilterTemplates"]:
            if row["Property"] != "Date Taken" or row["Operator"] != 2:
                raise Unsupported("filter row")
            after = self.value(row["Values"]["Date"])
            found = [asset for asset in found if asset.taken > after]
        if (params["WFContentItemSortProperty"], params["WFContentItemSortOrder"]) != (
            "Date Taken",
            "Oldest First",
        ):
            raise Unsupported("sort")
        found.sort(key=lambda asset: asset.taken)
        if params["WFContentItemLimitEnabled"]:
            limit = int(float(self.as_text(self.value(params["WFContentItemLimitNumber"]))))
            found = found[:limit]
        return found

    def do_properties_images(self, params: dict[str, Any]) -> Any:
        asset = self.value(params["WFInput"])
        if not isinstance(asset, Asset):
            raise Unsupported("Get Details of Images needs a photo")
        detail = params["WFContentItemPropertyName"]
        if detail == "Name":
            return asset.name
        if detail == "Date Taken":
            return asset.taken
        if detail == "File Size":
            return len(asset.data)
        raise Unsupported(f"detail {detail}")

    def do_getitemname(self, params: dict[str, Any]) -> str:
        item = self.value(params["WFInput"])
        if not isinstance(item, Asset):
            raise Unsupported("Get Name needs an item")
        return item.name

    def do_dictionary(self, params: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, _, value in self.fields(params["WFItems"])}

    def do_notification(self, params: dict[str, Any]) -> None:
        title = str(self.value(params["WFNotificationActionTitle"]))
        self.phone.notifications.append(
            (title, str(self.value(params["WFNotificationActionBody"])))
        )

    def do_downloadurl(self, params: dict[str, Any]) -> Any:
        url = str(self.value(params["WFURL"]))
        method = params["WFHTTPMethod"]
        headers = {k: str(v) for k, _, v in self.fields(params["WFHTTPHeaders"])}
        body = params["WFHTTPBodyType"]
        if self.before_request is not None:
            self.before_request(self.phone)
        uploaded = None
        if body == "JSON":
            payload = {k: v for k, _, v in self.fields(params["WFJSONValues"])}
            response = self.http.request(method, url, headers=headers, json=payload)
            record = Request(method, url, response.status_code, json_body=payload)
        elif body == "Form":
            data, files = {}, []
            for key, kind, value in self.fields(params["WFFormValues"]):
                if kind == 5:
                    if not isinstance(value, Asset):
                        raise Unsupported("form file field needs a file")
                    files.append((key, (value.filename, value.data)))
                    uploaded = value.filename
                else:
                    data[key] = self.as_text(value)
            response = self.http.request(method, url, headers=headers, data=data, files=files)
            record = Request(method, url, response.status_code, uploaded=uploaded)
        else:
            raise Unsupported(f"body type {body}")
        self.phone.requests.append(record)
        cut = self.cut_after_uploads
        if uploaded and cut is not None and len(self.phone.uploads()) >= cut:
            raise Interrupted
        try:
            return response.json()
        except ValueError:
            return response.text


def run_shortcut(
    plist: dict[str, Any],
    phone: Phone,
    answers: list[str],
    *,
    shortcut_input: list[Any] | None = None,
    cut_after_uploads: int | None = None,
    before_request: Callable[[Phone], None] | None = None,
) -> None:
    """Run `plist` on `phone`; raises Interrupted if `cut_after_uploads` is reached."""
    with httpx.Client(timeout=60) as http:
        Interpreter(
            plist,
            phone,
            answers,
            http,
            shortcut_input=shortcut_input,
            cut_after_uploads=cut_after_uploads,
            before_request=before_request,
        ).run()
