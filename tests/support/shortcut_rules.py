"""What a valid shortcut of ours may contain, from shared/shortcuts-format.md (§1-§8).

Only the actions we use are listed, with the parameter keys and enum values the format
brief gives for them; `problems(plist)` returns every rule a plist breaks, in words.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

__all__ = ["ACTIONS", "problems", "text_tokens"]

OBJECT = "\ufffc"
FLOW = {"GroupingIdentifier", "WFControlFlowMode"}
OUTPUT = {"UUID", "CustomOutputName"}

ACTIONS: dict[str, set[str]] = {
    "is.workflow.actions.comment": {"WFCommentActionText"},
    "is.workflow.actions.gettext": {"WFTextActionText"},
    "is.workflow.actions.setvariable": {"WFVariableName", "WFInput"},
    "is.workflow.actions.getwifi": {"WFNetworkDetailsNetwork", "WFWiFiDetail"},
    "is.workflow.actions.conditional": {"WFInput", "WFCondition", "WFConditionalActionString"},
    "is.workflow.actions.exit": set(),
    "is.workflow.actions.downloadurl": {
        "WFURL",
        "WFHTTPMethod",
        "WFHTTPHeaders",
        "WFHTTPBodyType",
        "WFFormValues",
        "WFJSONValues",
        "WFRequestVariable",
        "ShowHeaders",
    },
    "is.workflow.actions.getvalueforkey": {
        "WFInput",
        "WFGetDictionaryValueType",
        "WFDictionaryKey",
    },
    "is.workflow.actions.date": {"WFDateActionMode", "WFDateActionDate"},
    "is.workflow.actions.format.date": {
        "WFDate",
        "WFDateFormatStyle",
        "WFTimeFormatStyle",
        "WFISO8601IncludeTime",
        "WFDateFormat",
    },
    "is.workflow.actions.filter.photos": {
        "WFContentItemFilter",
        "WFContentItemSortProperty",
        "WFContentItemSortOrder",
        "WFContentItemLimitEnabled",
        "WFContentItemLimitNumber",
        "WFContentItemInputParameter",
    },
    "is.workflow.actions.repeat.count": {"WFRepeatCount"},
    "is.workflow.actions.repeat.each": {"WFInput"},
    "is.workflow.actions.properties.images": {"WFInput", "WFContentItemPropertyName"},
    "is.workflow.actions.dictionary": {"WFItems"},
    "is.workflow.actions.notification": {
        "WFNotificationActionTitle",
        "WFNotificationActionBody",
        "WFNotificationActionSound",
        "WFInput",
    },
    "is.workflow.actions.getitemname": {"WFInput"},
    "is.workflow.actions.hash": {"WFInput", "WFHashType"},
    # Add to Variable; Save to Photo Album (with an album: how Shortcuts adds a library
    # photo to an album); Delete Photos, whose input key is `photos`, not WFInput. Keys
    # from Apple's WFActions metadata (Save) and working exports (Delete Photos).
    "is.workflow.actions.appendvariable": {"WFVariableName", "WFInput"},
    "is.workflow.actions.savetocameraroll": {"WFInput", "WFCameraRollSelectedGroup"},
    "is.workflow.actions.deletephotos": {"photos"},
}
CONTROL_FLOW = {
    "is.workflow.actions.conditional",
    "is.workflow.actions.repeat.count",
    "is.workflow.actions.repeat.each",
}

ENUMS: dict[str, set[Any]] = {
    "WFHTTPMethod": {"GET", "POST", "PUT", "PATCH", "DELETE"},
    "WFHTTPBodyType": {"JSON", "Form", "File"},
    "WFGetDictionaryValueType": {"Value", "All Keys", "All Values"},
    "WFDateActionMode": {"Current Date", "Specified Date"},
    "WFDateFormatStyle": {
        "None",
        "Short",
        "Medium",
        "Long",
        "Relative",
        "RFC 2822",
        "ISO 8601",
        "Custom",
    },
    "WFNetworkDetailsNetwork": {"Wi-Fi", "Cellular"},
    "WFWiFiDetail": {
        "Network Name",
        "BSSID",
        "Wi-Fi Standard",
        "RX Rate",
        "TX Rate",
        "RSSI",
        "Noise",
        "Channel Number",
        "Hardware MAC Address",
    },
    "WFContentItemSortProperty": {
        "Width",
        "Height",
        "Date Taken",
        "Time Taken",
        "Media Type",
        "Duration",
        "Frame Rate",
        "File Extension",
        "File Path",
        "Creation Date",
        "Last Modified Date",
        "Name",
        "Random",
    },
    "WFContentItemSortOrder": {
        "Oldest First",
        "Latest First",
        "Newest First",
        "Smallest First",
        "Biggest First",
        "Ascending",
        "Descending",
        "Shortest First",
        "Longest First",
        "A to Z",
        "Z to A",
    },
    "WFContentItemPropertyName": {
        "Album",
        "Width",
        "Height",
        "Date Taken",
        "Media Type",
        "Photo Type",
        "Is a Screenshot",
        "Is a Screen Recording",
        "Location",
        "Duration",
        "Frame Rate",
        "Orientation",
        "Camera Make",
        "Camera Model",
        "Metadata Dictionary",
        "Is Favorite",
        "File Size",
        "File Extension",
        "File Path",
        "Creation Date",
        "Last Modified Date",
        "Name",
    },
    "WFCondition": {0, 1, 2, 3, 4, 5, 8, 9, 99, 100, 101, 999, 1000, 1001, 1002, 1003},
    "WFHashType": {"MD5", "SHA1", "SHA256", "SHA512"},
}
# Aggrandizements (format brief §2.3): their keys, and the values we may use.
AGGRANDIZEMENTS: dict[str, set[str]] = {
    "WFDictionaryValueVariableAggrandizement": {"DictionaryKey"},
    "WFPropertyVariableAggrandizement": {"PropertyName", "PropertyUserInfo"},
    "WFCoercionVariableAggrandizement": {"CoercionItemClass"},
    "WFDateFormatVariableAggrandizement": {
        "WFDateFormatStyle",
        "WFDateFormat",
        "WFTimeFormatStyle",
        "WFRelativeDateFormatStyle",
        "WFISO8601IncludeTime",
    },
}
COERCIONS = {"WFDateContentItem", "WFNumberContentItem", "WFDictionaryContentItem"}
PHOTO_FILTER_PROPERTIES = {
    "Date Taken",
    "Creation Date",
    "Last Modified Date",
    "Time Taken",
    "Media Type",
    "Photo Type",
    "Is a Screenshot",
    "Is Hidden",
    "Is Favorite",
    "Album",
    "Name",
    "File Extension",
    "Width",
    "Height",
    "Frame Rate",
    "Duration",
    "Orientation",
}
RANGE_KEY = re.compile(r"^\{(\d+), 1\}$")
ATTACHMENT_TYPES = {"ActionOutput", "Variable", "ExtensionInput", "CurrentDate", "Clipboard"}


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from walk(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from walk(inner, f"{path}[{index}]")


def text_tokens(plist: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (path, value["Value"])
        for path, value in walk(plist["WFWorkflowActions"])
        if isinstance(value, dict) and value.get("WFSerializationType") == "WFTextTokenString"
    ]


def attachments(value: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every variable reference inside `value` (a parameter), with its path."""
    for path, inner in walk(value):
        if isinstance(inner, dict) and inner.get("WFSerializationType") == "WFTextTokenString":
            for key, reference in inner["Value"].get("attachmentsByRange", {}).items():
                yield f"{path}{key}", reference
        elif isinstance(inner, dict) and inner.get("WFSerializationType") == (
            "WFTextTokenAttachment"
        ):
            yield path, inner["Value"]


def utf16_units(text: str) -> list[str]:
    """The string as UTF-16 code units; a character above U+FFFF takes two."""
    units: list[str] = []
    for char in text:
        units.extend([char, char] if ord(char) > 0xFFFF else [char])
    return units


def check_token(path: str, token: dict[str, Any]) -> list[str]:
    found = []
    string = token["string"]
    ranges = token.get("attachmentsByRange", {})
    if string.count(OBJECT) != len(ranges):
        found.append(f"{path}: {string.count(OBJECT)} U+FFFC but {len(ranges)} attachments")
    units = utf16_units(string)
    for key in ranges:
        match = RANGE_KEY.match(key)
        if not match:
            found.append(f"{path}: range key {key!r} is not '{{n, 1}}'")
        elif int(match[1]) >= len(units) or units[int(match[1])] != OBJECT:
            found.append(f"{path}: {key} does not point at U+FFFC (UTF-16 units)")
    return found


def check_fields(path: str, value: Any, allow_files: bool) -> list[str]:
    found = []
    if not isinstance(value, dict) or value.get("WFSerializationType") != (
        "WFDictionaryFieldValue"
    ):
        return [f"{path}: not a WFDictionaryFieldValue"]
    for index, item in enumerate(value["Value"]["WFDictionaryFieldValueItems"]):
        kind = item.get("WFItemType")
        where = f"{path}[{index}]"
        if kind not in range(6) or (kind == 5 and not allow_files):
            found.append(f"{where}: item type {kind} is not allowed here")
        if item.get("WFKey", {}).get("WFSerializationType") != "WFTextTokenString":
            found.append(f"{where}: WFKey is not a text token")
        inner = item.get("WFValue", {})
        expected = {
            0: "WFTextTokenString",
            3: "WFTextTokenString",
            4: "WFNumberSubstitutableState",
            2: "WFArrayParameterState",
            1: "WFDictionaryFieldValue",
            5: "WFTokenAttachmentParameterState",
        }.get(kind)
        if inner.get("WFSerializationType") != expected:
            found.append(f"{where}: WFValue is not a {expected}")
        if kind == 5 and inner.get("Value", {}).get("WFSerializationType") != (
            "WFTextTokenAttachment"
        ):
            found.append(f"{where}: a file field must wrap a WFTextTokenAttachment")
    return found


def check_action(index: int, identifier: str, params: dict[str, Any]) -> list[str]:
    where = f"action {index} ({identifier})"
    if identifier not in ACTIONS:
        return [f"{where}: not one of the actions we use"]
    allowed = ACTIONS[identifier] | OUTPUT | (FLOW if identifier in CONTROL_FLOW else set())
    found = [f"{where}: unknown parameter {key}" for key in sorted(set(params) - allowed)]
    for key, choices in ENUMS.items():
        if key in params and params[key] not in choices:
            found.append(f"{where}: {key} = {params[key]!r} is not one of the known values")
    if identifier == "is.workflow.actions.downloadurl":
        found += check_request(where, params)
    for key in ("WFHTTPHeaders", "WFJSONValues", "WFItems"):
        if key in params:
            found += check_fields(f"{where}.{key}", params[key], allow_files=False)
    if "WFFormValues" in params:
        found += check_fields(f"{where}.WFFormValues", params["WFFormValues"], allow_files=True)
    if identifier == "is.workflow.actions.filter.photos":
        table = params["WFContentItemFilter"]
        if table.get("WFSerializationType") != "WFContentPredicateTableTemplate":
            found.append(f"{where}: filter is not a WFContentPredicateTableTemplate")
        for row in table["Value"]["WFActionParameterFilterTemplates"]:
            if row["Property"] not in PHOTO_FILTER_PROPERTIES:
                found.append(f"{where}: filter property {row['Property']!r} is unknown")
            if row["Operator"] not in ENUMS["WFCondition"]:
                found.append(f"{where}: filter operator {row['Operator']} is unknown")
    if identifier == "is.workflow.actions.conditional" and params["WFControlFlowMode"] == 0:
        wrapper = params.get("WFInput", {})
        if wrapper.get("Type") != "Variable" or "Variable" not in wrapper:
            found.append(f"{where}: If input must be {{Type: Variable, Variable: ...}}")
        if params.get("WFCondition") not in ENUMS["WFCondition"]:
            found.append(f"{where}: If needs a known WFCondition")
    return found


def check_request(where: str, params: dict[str, Any]) -> list[str]:
    body = params.get("WFHTTPBodyType")
    needs = {"Form": "WFFormValues", "JSON": "WFJSONValues", "File": "WFRequestVariable"}
    found = []
    if body is not None and needs[body] not in params:
        found.append(f"{where}: body type {body} needs {needs[body]}")
    if body is not None and params.get("WFHTTPMethod", "GET") == "GET":
        found.append(f"{where}: a GET request cannot carry a body")
    return found


def check_flow(actions: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    stack: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, action in enumerate(actions):
        identifier = action["WFWorkflowActionIdentifier"]
        params = action["WFWorkflowActionParameters"]
        if identifier not in CONTROL_FLOW:
            continue
        group, mode = params.get("GroupingIdentifier"), params.get("WFControlFlowMode")
        if not isinstance(group, str) or type(mode) is not int:
            found.append(f"action {index}: control flow needs a group id and an int mode")
            continue
        if mode == 0:
            if group in seen:
                found.append(f"action {index}: group {group} started twice")
            seen.add(group)
            stack.append((group, identifier))
        elif not stack or stack[-1] != (group, identifier):
            found.append(f"action {index}: mode {mode} does not close the innermost block")
        elif mode == 1 and identifier != "is.workflow.actions.conditional":
            found.append(f"action {index}: only If has an Otherwise")
        elif mode == 2:
            stack.pop()
    found += [f"block {group} is never closed" for group, _ in stack]
    return found


def check_references(actions: list[dict[str, Any]]) -> list[str]:
    """Outputs are used after they are made; variables after they are set (or in a loop)."""
    found: list[str] = []
    published: dict[str, str] = {}
    variables: set[str] = set()
    depth = 0
    for index, action in enumerate(actions):
        identifier = action["WFWorkflowActionIdentifier"]
        params = action["WFWorkflowActionParameters"]
        mode = params.get("WFControlFlowMode")
        looping = identifier != "is.workflow.actions.conditional" and mode is not None
        inputs = {k: v for k, v in params.items() if k not in ("UUID", "CustomOutputName")}
        # A loop's own input is read outside it: only enclosing loops' variables count.
        loop_names = {
            f"Repeat {kind}{'' if level == 1 else f' {level}'}"
            for level in range(1, depth + 1)
            for kind in ("Item", "Index")
        }
        for path, reference in attachments(inputs):
            kind = reference.get("Type")
            if kind not in ATTACHMENT_TYPES:
                found.append(f"action {index}{path}: unknown attachment type {kind}")
            elif kind == "ActionOutput":
                uuid = reference.get("OutputUUID")
                if uuid not in published:
                    found.append(
                        f"action {index}{path}: OutputUUID {uuid} is not an earlier action"
                    )
                elif reference.get("OutputName") != published[uuid]:
                    found.append(f"action {index}{path}: OutputName does not match its action")
            for problem in check_aggrandizements(reference):
                found.append(f"action {index}{path}: {problem}")
            if kind == "Variable":
                name = reference.get("VariableName")
                if name not in variables and name not in loop_names:
                    found.append(f"action {index}{path}: variable {name!r} is not set before")
        if looping:
            depth += 1 if mode == 0 else -1 if mode == 2 else 0
        if identifier in (
            "is.workflow.actions.setvariable",
            "is.workflow.actions.appendvariable",
        ):
            variables.add(params["WFVariableName"])
        if "UUID" in params:
            if params["UUID"] in published:
                found.append(f"action {index}: UUID {params['UUID']} is used twice")
            name = params.get("CustomOutputName") or ("Repeat Results" if looping else "If Result")
            published[params["UUID"]] = name
    return found


def check_aggrandizements(reference: dict[str, Any]) -> list[str]:
    found = []
    for step in reference.get("Aggrandizements", []):
        kind = step.get("Type")
        if kind not in AGGRANDIZEMENTS:
            found.append(f"unknown aggrandizement {kind}")
            continue
        extra = set(step) - AGGRANDIZEMENTS[kind] - {"Type"}
        if extra:
            found.append(f"{kind} has unknown keys {sorted(extra)}")
        if (
            kind == "WFPropertyVariableAggrandizement"
            and step.get("PropertyName") not in (ENUMS["WFContentItemPropertyName"])
        ):
            found.append(f"unknown property {step.get('PropertyName')!r}")
        if kind == "WFCoercionVariableAggrandizement" and step.get("CoercionItemClass") not in (
            COERCIONS
        ):
            found.append(f"unknown coercion {step.get('CoercionItemClass')!r}")
    return found


def check_questions(plist: dict[str, Any]) -> list[str]:
    found = []
    actions = plist["WFWorkflowActions"]
    for question in plist["WFWorkflowImportQuestions"]:
        index, key = question.get("ActionIndex"), question.get("ParameterKey")
        if question.get("Category") != "Parameter" or not isinstance(question.get("Text"), str):
            found.append(f"question {question}: needs Category Parameter and a Text")
        if not isinstance(index, int) or not 0 <= index < len(actions):
            found.append(f"question {key}: ActionIndex {index} is out of range")
            continue
        value = actions[index]["WFWorkflowActionParameters"].get(key)
        if not isinstance(value, str):
            found.append(f"question {key}: action {index} has no plain-string {key}")
    return found


ROOT_TYPES: dict[str, type] = {
    "WFWorkflowActions": list,
    "WFWorkflowClientVersion": str,
    "WFWorkflowMinimumClientVersion": int,
    "WFWorkflowMinimumClientVersionString": str,
    "WFWorkflowIcon": dict,
    "WFWorkflowImportQuestions": list,
    "WFWorkflowInputContentItemClasses": list,
    "WFWorkflowTypes": list,
}


def problems(plist: Any) -> list[str]:
    """Every broken rule of the format brief's §8 checklist (empty when all is well)."""
    if not isinstance(plist, dict):
        return ["the root is not a dictionary"]
    found = [
        f"{key} is missing or not a {kind.__name__}"
        for key, kind in ROOT_TYPES.items()
        if type(plist.get(key)) is not kind
    ]
    if found:
        return found
    actions = plist["WFWorkflowActions"]
    for index, action in enumerate(actions):
        identifier = action.get("WFWorkflowActionIdentifier")
        params = action.get("WFWorkflowActionParameters")
        if not isinstance(identifier, str) or not isinstance(params, dict):
            found.append(f"action {index}: needs an identifier and a parameter dictionary")
            continue
        found += check_action(index, identifier, params)
    for path, token in text_tokens(plist):
        found += check_token(path, token)
    found += check_flow(actions)
    found += check_references(actions)
    found += check_questions(plist)
    return found
