"""A small Shortcuts interpreter that behaves like the phone, for the actions our shortcuts use.

It runs the generated plist itself: import answers are written into the parameters they
target, control flow follows GroupingIdentifier/WFControlFlowMode, values flow through
magic variables, named variables and aggrandizements, and Get Contents of URL makes real
HTTP requests. Where shared/shortcuts-on-iphone.md says how the phone behaves, this does
the same (the section is named in the code): date filters compare whole days in the
phone's zone (§1), File Size is formatted text unless a number is asked for (§2), edited
photos send their render and iCloud reads can fail (§3), a JSON body without fields is no
body (§4), a dotted key with a missing parent is an action error (§5). Albums: Find Photos
on an album that does not exist stops the run ("Photo album not found"); Save to Photo
Album adds a library photo to an album, but one already in it is duplicated (Apple's own
action note), and, as the facts page allows, joining an album changes Last Modified Date;
Delete Photos asks first (declining ends the shortcut) and moves the photos to Recently
Deleted. An action error
stops the shortcut with an alert, as on the phone; anything the interpreter does not know
is refused (`Unsupported`), so a generator change cannot silently pass.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal

import httpx

__all__ = [
    "ActionError",
    "Asset",
    "FileSize",
    "Interrupted",
    "Phone",
    "Request",
    "formatted_size",
    "run_shortcut",
]

OBJECT = "\ufffc"
BERLIN = timezone(timedelta(hours=2))


@dataclass
class Asset:
    """One photo or video in the fake library (or one shared item).

    `data` is the unedited original; `edited` the render of an edit (then only the render
    can be sent, §3). `modified` is PhotoKit's modificationDate: set when the asset was
    added to this library or last changed. A Live Photo's `live_video` is never sent.
    """

    name: str  # as Shortcuts shows it: without extension
    extension: str
    taken: datetime
    data: bytes
    modified: datetime | None = None
    edited: bytes | None = None
    live_video: bytes | None = None
    icloud_fails: bool = False  # an "Optimize iPhone Storage" original that cannot be fetched
    favorite: bool = False
    albums: set[str] = field(default_factory=set)

    @property
    def filename(self) -> str:
        return f"{self.name}.{self.extension}"

    @property
    def sent(self) -> bytes:
        """The bytes Shortcuts hands out for this asset (§3: an edit's render, if any)."""
        return self.edited if self.edited is not None else self.data

    def changed_at(self) -> datetime:
        return self.modified or self.taken


@dataclass(frozen=True)
class FileSize:
    """WFFileSizeContentItem: text is the localized formatted size, a number is bytes (§2)."""

    byte_count: int


def formatted_size(byte_count: int) -> str:
    """Like NSByteCountFormatter (file style, decimal): '12 bytes', '512 KB', '2.1 MB'."""
    if byte_count < 1000:
        return f"{byte_count} bytes"
    for unit, scale in (("KB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        if byte_count < scale * 1000 or unit == "GB":
            value = byte_count / scale
            return f"{value:.0f} {unit}" if unit == "KB" else f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


@dataclass
class Request:
    method: str
    url: str
    status: int
    json_body: Any = None
    uploaded: str | None = None  # file name, when the request carried a file
    sent_bytes: int = 0


@dataclass
class Phone:
    wifi: str | None
    library: list[Asset] = field(default_factory=list)
    zone: timezone = BERLIN
    # §1 [open]: whether Last Modified Date filters compare exactly or by whole days.
    modified_filter: Literal["exact", "day"] = "day"
    notifications: list[tuple[str, str]] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)  # action errors: iOS stops the shortcut
    requests: list[Request] = field(default_factory=list)
    actions_run: int = 0
    # The albums that exist on the phone; the guide's setup creates "Safe at home".
    albums: set[str] = field(default_factory=lambda: {"Safe at home"})
    confirm_delete: bool = True  # what the person answers when iOS asks before deleting
    delete_prompts: list[int] = field(default_factory=list)  # photos in each question
    recently_deleted: list[Asset] = field(default_factory=list)
    duplicates: list[Asset] = field(default_factory=list)

    def album(self, name: str) -> list[Asset]:
        return [a for a in self.library if name in a.albums]

    def uploads(self) -> list[str]:
        return [r.uploaded for r in self.requests if r.uploaded]

    def bytes_uploaded(self) -> int:
        return sum(r.sent_bytes for r in self.requests)


class Interrupted(Exception):
    """iOS ended the run (time limit, phone left the Wi-Fi): nothing more happens."""


class ActionError(Exception):
    """An action failed: on the phone the shortcut stops and iOS shows this message."""


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


def _number(value: Any) -> float:
    if isinstance(value, FileSize):
        return float(value.byte_count)
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        raise ActionError(f"{value!r} is not a number") from None


class Interpreter:
    def __init__(
        self,
        plist: dict[str, Any],
        phone: Phone,
        answers: list[str],
        http: httpx.Client,
        shortcut_input: list[Any] | None = None,
        cut_after_uploads: int | None = None,
        kill_after_actions: int | None = None,
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
        self.kill_after_actions = kill_after_actions
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
        kind = reference["Type"]
        if kind == "ActionOutput":
            uuid = reference["OutputUUID"]
            if uuid not in self.outputs:
                raise Unsupported(f"{reference['OutputName']!r} is used before it was set")
            value = self.outputs[uuid]
        elif kind == "Variable":
            name = reference["VariableName"]
            if name not in self.variables:
                raise Unsupported(f"variable {name!r} is used before it was set")
            value = self.variables[name]
        elif kind == "ExtensionInput":
            value = self.input
        else:
            raise Unsupported(f"attachment type {kind}")
        for step in reference.get("Aggrandizements", []):
            value = self.aggrandize(value, step)
        return value

    def aggrandize(self, value: Any, step: dict[str, Any]) -> Any:
        kind = step["Type"]
        if kind == "WFDictionaryValueVariableAggrandizement":
            return self.key_path(value, str(step["DictionaryKey"]))
        if kind == "WFPropertyVariableAggrandizement":
            return self.detail(value, step["PropertyName"])
        if kind == "WFCoercionVariableAggrandizement":
            target = step["CoercionItemClass"]
            if target == "WFDateContentItem":
                return self.as_date(value)
            if target == "WFNumberContentItem":
                return _number(value)
            raise Unsupported(f"coercion to {target}")
        if kind == "WFDateFormatVariableAggrandizement":
            if step.get("WFDateFormatStyle") != "ISO 8601" or not step.get("WFISO8601IncludeTime"):
                raise Unsupported("date format aggrandizement")
            return self.iso(value)
        raise Unsupported(f"aggrandizement {kind}")

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
        """Shortcuts' coercion to text: a dictionary becomes JSON, a list one item per line,
        a File Size its formatted text (§2), a date its localized medium form."""
        if value is None:
            return ""
        if isinstance(value, bool):
            return "Yes" if value else "No"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, str | int | float):
            return str(value)
        if isinstance(value, FileSize):
            return formatted_size(value.byte_count)
        if isinstance(value, datetime):
            local = value.astimezone(self.phone.zone)
            return f"{local.day} {local:%b %Y} at {local:%H:%M}"
        if isinstance(value, dict):
            return json.dumps(value, ensure_ascii=False)
        if isinstance(value, list):
            return "\n".join(self.as_text(v) for v in value)
        raise Unsupported(f"{type(value).__name__} used as text")

    def as_date(self, value: Any) -> datetime:
        """Text to a date, as the Date action reads it: no zone means the phone's zone."""
        if isinstance(value, datetime):
            return value
        text = self.as_text(value).strip().replace("Z", "+00:00")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ActionError(f"{text!r} is not a date") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=self.phone.zone)

    def iso(self, value: Any) -> str:
        if not isinstance(value, datetime):
            raise Unsupported("ISO 8601 formatting needs a date")
        return value.astimezone(self.phone.zone).isoformat(timespec="seconds")

    def fields(self, parameter: dict[str, Any]) -> list[tuple[str, int, Any]]:
        if parameter["WFSerializationType"] != "WFDictionaryFieldValue":
            raise Unsupported("dictionary field serialization")
        items = []
        for item in parameter["Value"]["WFDictionaryFieldValueItems"]:
            kind, key = item["WFItemType"], self.value(item["WFKey"])
            if kind == 0:
                items.append((key, kind, self.as_text(self.value(item["WFValue"]))))
            elif kind == 3:
                items.append((key, kind, self.number_field(item["WFValue"])))
            elif kind == 5:
                wrapped = item["WFValue"]
                if wrapped["WFSerializationType"] != "WFTokenAttachmentParameterState":
                    raise Unsupported("file field serialization")
                items.append((key, kind, self.value(wrapped["Value"])))
            else:
                raise Unsupported(f"dictionary item type {kind}")
        return items

    def number_field(self, token: dict[str, Any]) -> float | int | None:
        """A number field: a lone variable is coerced to a number (File Size: bytes, §2)."""
        inner = token["Value"]
        attachments = inner.get("attachmentsByRange", {})
        if inner["string"] == OBJECT and len(attachments) == 1:
            value = self.resolve(next(iter(attachments.values())))
            if value is None:
                return None
            number = _number(value)
        else:
            number = _number(self.render(inner))
        return int(number) if number.is_integer() else number

    # -- running -------------------------------------------------------------------------

    def run(self) -> None:
        pc = 0
        try:
            while pc < len(self.actions):
                pc = self.step(pc)
                self.phone.actions_run += 1
                if (
                    self.kill_after_actions is not None
                    and self.phone.actions_run >= self.kill_after_actions
                ):
                    raise Interrupted
        except Stopped:
            pass
        except ActionError as error:
            self.phone.alerts.append(str(error))

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
            return self.conditional(pc, params, group, mode)
        if mode == 0:
            if name == "repeat.count":
                items = list(range(int(_number(self.value(params["WFRepeatCount"])))))
            elif name == "repeat.each":
                found = self.value(params["WFInput"])
                items = found if isinstance(found, list) else [] if found is None else [found]
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

    def conditional(self, pc: int, params: dict[str, Any], group: dict[int, int], mode: int) -> int:
        if mode == 0:
            self.last_output = None
            if self.condition(params):
                return pc + 1
            return (group[1] if 1 in group else group[2]) + 1
        if mode == 1:  # the end of the taken branch: skip the other one
            end = group[2]
            self.publish_if_result(end)
            return end + 1
        self.publish_if_result(pc)
        return pc + 1

    def publish_if_result(self, end: int) -> None:
        # The If's output is the output of the last action of the branch that ran.
        params = self.actions[end][1]
        if "UUID" in params:
            self.outputs[params["UUID"]] = self.last_output

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
            # §5 [open]: whether {} or [] "has any value"; taken as no value (the pessimistic
            # reading), so a shortcut that asks it of an empty reply fails here too.
            has = subject not in (None, "", {}, [])
            return has if code == 100 else not has
        operand = self.value(params["WFConditionalActionString"])
        if code == 4:
            return self.as_text(subject) == operand
        if code == 5:
            return self.as_text(subject) != operand
        raise Unsupported(f"condition {code}")

    # -- dictionaries (§5) ----------------------------------------------------------------

    def key_path(self, current: Any, path: str) -> Any:
        """WFKeyPath: a missing last key is no value; a missing parent is an action error."""
        current = self.as_dictionary(current)
        parts = path.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(current, dict):
                raise ActionError(f"No value was found for the dictionary key {path!r}.")
            if part not in current:
                if depth < len(parts) - 1:
                    raise ActionError(f"No value was found for the dictionary key {path!r}.")
                return None
            current = current[part]
        return current

    def as_dictionary(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return None
        return value

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
        return self.key_path(
            self.value(params["WFInput"]), self.as_text(self.value(params["WFDictionaryKey"]))
        )

    def do_date(self, params: dict[str, Any]) -> datetime:
        if params["WFDateActionMode"] != "Specified Date":
            raise Unsupported("date mode")
        return self.as_date(self.value(params["WFDateActionDate"]))

    def do_format_date(self, params: dict[str, Any]) -> str:
        if params["WFDateFormatStyle"] != "ISO 8601" or not params["WFISO8601IncludeTime"]:
            raise Unsupported("date format")
        return self.iso(self.value(params["WFDate"]))

    def day(self, moment: datetime) -> date:
        return moment.astimezone(self.phone.zone).date()

    def matches(self, asset: Asset, row: dict[str, Any]) -> bool:
        """One filter row, as WFContentPredicateForRowTemplateValue compares it (§1)."""
        prop, operator = row["Property"], row["Operator"]
        if prop == "Album":
            if operator != 4:
                raise Unsupported(f"album operator {operator}")
            enumeration = row["Values"]["Enumeration"]
            if enumeration.get("WFSerializationType") != "WFStringSubstitutableState":
                raise Unsupported("album value")
            name = str(self.value(enumeration["Value"]))
            if name not in self.phone.albums:
                raise ActionError("Photo album not found.")
            return name in asset.albums
        bound = self.as_date(self.value(row["Values"]["Date"]))
        if prop == "Date Taken":
            value, by_day = asset.taken, True
        elif prop == "Last Modified Date":
            value, by_day = asset.changed_at(), self.phone.modified_filter == "day"
        else:
            raise Unsupported(f"filter on {prop}")
        left: Any = self.day(value) if by_day else value
        right: Any = self.day(bound) if by_day else bound
        if operator == 2:
            return bool(left > right)
        if operator == 0:
            return bool(left < right)
        if operator == 4:
            return bool(left == right)
        raise Unsupported(f"filter operator {operator}")

    def do_filter_photos(self, params: dict[str, Any]) -> list[Asset]:
        if params["WFContentItemInputParameter"] != "Library":
            raise Unsupported("Find Photos input")
        table = params["WFContentItemFilter"]["Value"]
        if table["WFActionParameterFilterPrefix"] != 1:
            raise Unsupported("filter prefix")
        rows = table["WFActionParameterFilterTemplates"]
        found = [a for a in self.phone.library if all(self.matches(a, row) for row in rows)]
        sort = params["WFContentItemSortProperty"]
        if params["WFContentItemSortOrder"] != "Oldest First":
            raise Unsupported("sort order")
        # Sorting by a date is exact; ties keep library order; the limit comes after.
        if sort == "Date Taken":
            found.sort(key=lambda asset: asset.taken)
        elif sort == "Last Modified Date":
            found.sort(key=lambda asset: asset.changed_at())
        else:
            raise Unsupported(f"sort by {sort}")
        if params.get("WFContentItemLimitEnabled"):
            found = found[: int(_number(self.value(params["WFContentItemLimitNumber"])))]
        return found

    def do_getitemfromlist(self, params: dict[str, Any]) -> list[Any]:
        """Items in Range, as WFGetItemFromListAction: out of range is an action error."""
        if params["WFItemSpecifier"] != "Items in Range":
            raise Unsupported("item specifier")
        items = self.value(params["WFInput"])
        items = items if isinstance(items, list) else [] if items is None else [items]
        if not items:
            return []
        start = int(_number(self.value(params["WFItemRangeStart"])))
        end = (
            int(_number(self.value(params["WFItemRangeEnd"])))
            if "WFItemRangeEnd" in params
            else len(items)
        )
        if start <= 0 or end < start or end > len(items):
            raise ActionError(
                f"The range you specified was outside of the possible range (you asked for "
                f"items {start} through {end}, and the list has only {len(items)})."
            )
        return items[start - 1 : end]

    def detail(self, asset: Any, name: str) -> Any:
        if not isinstance(asset, Asset):
            raise Unsupported("Get Details of Images needs a photo")
        if name == "Name":
            return asset.name
        if name == "Date Taken":
            return asset.taken
        if name == "Last Modified Date":
            return asset.changed_at()
        if name == "File Size":
            return FileSize(len(asset.sent))  # §2: the size of the file that will be sent
        if name == "File Extension":
            return asset.extension
        if name == "Photo Type":
            return ["Live Photo"] if asset.live_video is not None else []
        if name == "Is Favorite":
            return asset.favorite
        if name == "Album":
            return sorted(asset.albums)
        raise Unsupported(f"detail {name}")

    def do_properties_images(self, params: dict[str, Any]) -> Any:
        return self.detail(self.value(params["WFInput"]), params["WFContentItemPropertyName"])

    def read(self, asset: Asset) -> bytes:
        """The bytes of an asset; an iCloud original that cannot be fetched is an error (§3)."""
        if asset.icloud_fails:
            raise ActionError(f"{asset.filename} could not be downloaded from iCloud Photos.")
        return asset.sent

    def do_hash(self, params: dict[str, Any]) -> str:
        if params["WFHashType"] != "SHA256":
            raise Unsupported("hash type")
        item = self.value(params["WFInput"])
        if not isinstance(item, Asset):
            raise Unsupported("Generate Hash needs a file")
        return hashlib.sha256(self.read(item)).hexdigest()

    def do_getitemname(self, params: dict[str, Any]) -> str:
        item = self.value(params["WFInput"])
        if not isinstance(item, Asset):
            raise Unsupported("Get Name needs an item")
        return item.name

    def do_appendvariable(self, params: dict[str, Any]) -> list[Any]:
        name = params["WFVariableName"]
        value = self.value(params["WFInput"])
        before = self.variables.get(name, [])
        items = before if isinstance(before, list) else [before]
        self.variables[name] = [*items, *(value if isinstance(value, list) else [value])]
        return self.variables[name]

    def photos_of(self, value: Any) -> list[Asset]:
        items = value if isinstance(value, list) else [] if value is None else [value]
        if not all(isinstance(item, Asset) for item in items):
            raise Unsupported("a photo action needs photos")
        return items

    def do_savetocameraroll(self, params: dict[str, Any]) -> list[Asset]:
        """Save to Photo Album with an album: a library photo joins it; one already in it
        is saved again as a new photo; a missing album is an action error.

        Read in WFSaveToCameraRollAction's decompiled code: for a photo-media item whose
        PHAsset the album does not contain, the asset itself goes to `addAssets:` of the
        album's change request (no copy); one the album already contains is taken by its
        file representation and saved through `creationRequestForAssetFromImageAtFileURL:`
        (a new photo); no matching collection finishes with "The photo album that was
        selected does not exist." (Apple's words; ours are the interpreter's)."""
        album = str(self.value(params["WFCameraRollSelectedGroup"]))
        if album not in self.phone.albums:
            raise ActionError(f"The album “{album}” could not be found.")
        saved = []
        for asset in self.photos_of(self.value(params["WFInput"])):
            if album in asset.albums:
                copy = Asset(
                    asset.name + " copy",
                    asset.extension,
                    asset.taken,
                    asset.sent,
                    modified=datetime.now(self.phone.zone),
                    albums={album},
                )
                self.phone.library.append(copy)
                self.phone.duplicates.append(copy)
                saved.append(copy)
                continue
            asset.albums.add(album)
            # §1: joining an album may change the photo's Last Modified Date.
            asset.modified = datetime.now(self.phone.zone)
            saved.append(asset)
        return saved

    def do_deletephotos(self, params: dict[str, Any]) -> None:
        """Delete Photos: iOS asks first; declining ends the shortcut (nothing deleted)."""
        doomed = self.photos_of(self.value(params["photos"]))
        self.phone.delete_prompts.append(len(doomed))
        if not self.phone.confirm_delete:
            raise Stopped
        for asset in doomed:
            if asset in self.phone.library:
                self.phone.library.remove(asset)
                self.phone.recently_deleted.append(asset)

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
        uploaded, size = None, 0
        try:
            if body == "JSON":
                payload = {k: v for k, _, v in self.fields(params["WFJSONValues"])}
                # §4: a JSON body with no fields may be sent as no body at all.
                content = json.dumps(payload).encode() if payload else b""
                if payload:
                    headers["Content-Type"] = "application/json"
                response = self.http.request(method, url, headers=headers, content=content)
                record = Request(method, url, response.status_code, json_body=payload)
            elif body == "Form":
                data, files = {}, []
                for key, kind, value in self.fields(params["WFFormValues"]):
                    if kind == 5:
                        if not isinstance(value, Asset):
                            raise Unsupported("form file field needs a file")
                        contents = self.read(value)
                        files.append((key, (value.filename, contents)))
                        uploaded, size = value.filename, len(contents)
                    else:
                        data[key] = value
                response = self.http.request(method, url, headers=headers, data=data, files=files)
                record = Request(
                    method, url, response.status_code, uploaded=uploaded, sent_bytes=size
                )
            else:
                raise Unsupported(f"body type {body}")
        except httpx.TransportError as error:
            raise ActionError(f"The request to {url} failed: {error}") from None
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
    kill_after_actions: int | None = None,
    before_request: Callable[[Phone], None] | None = None,
) -> None:
    """Run `plist` on `phone`; raises Interrupted if the run is cut off or killed."""
    with httpx.Client(timeout=60) as http:
        Interpreter(
            plist,
            phone,
            answers,
            http,
            shortcut_input=shortcut_input,
            cut_after_uploads=cut_after_uploads,
            kill_after_actions=kill_after_actions,
            before_request=before_request,
        ).run()
