"""Building blocks of a .shortcut plist: text tokens, variable references, dictionary
fields, actions with deterministic UUIDs, and If/Repeat blocks.

Shapes follow shared/shortcuts-format.md (§2); `app/phone/shortcut.py` composes the shortcuts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

__all__ = [
    "HAS_NO_VALUE",
    "HAS_VALUE",
    "IS",
    "IS_NOT",
    "Attachment",
    "Block",
    "Builder",
    "Output",
    "Plist",
    "as_date",
    "as_number",
    "attachment",
    "detail",
    "fields",
    "file_field",
    "if_block",
    "iso_8601",
    "key",
    "number_field",
    "shortcut_input",
    "text",
    "text_field",
    "utf16_length",
    "variable",
]

OBJECT = "\ufffc"  # where a variable sits inside a text token
_NAMESPACE = uuid.UUID("6f1b7a52-8d3e-4c1e-9a57-0d4c2f2b9e11")

Plist = dict[str, Any]
Attachment = dict[str, Any]


@dataclass(frozen=True)
class Output:
    """The magic variable an action publishes (its `UUID`)."""

    uuid: str
    name: str

    def ref(self, *aggrandizements: dict[str, Any]) -> Attachment:
        value: Attachment = {
            "Type": "ActionOutput",
            "OutputUUID": self.uuid,
            "OutputName": self.name,
        }
        if aggrandizements:
            value["Aggrandizements"] = list(aggrandizements)
        return value


def variable(name: str, *aggrandizements: dict[str, Any]) -> Attachment:
    value: Attachment = {"Type": "Variable", "VariableName": name}
    if aggrandizements:
        value["Aggrandizements"] = list(aggrandizements)
    return value


# Aggrandizements: what the editor offers when a variable is tapped (format brief §2.3).
def key(name: str) -> dict[str, Any]:
    """The variable's dictionary value for `name` (a dotted path reads nested keys)."""
    return {"Type": "WFDictionaryValueVariableAggrandizement", "DictionaryKey": name}


def detail(name: str) -> dict[str, Any]:
    """A property of the variable's content, e.g. a photo's "Date Taken"."""
    return {"Type": "WFPropertyVariableAggrandizement", "PropertyName": name}


def as_date() -> dict[str, Any]:
    return {"Type": "WFCoercionVariableAggrandizement", "CoercionItemClass": "WFDateContentItem"}


def as_number() -> dict[str, Any]:
    return {"Type": "WFCoercionVariableAggrandizement", "CoercionItemClass": "WFNumberContentItem"}


def iso_8601() -> dict[str, Any]:
    """Format the variable's date as ISO 8601 with the time (and the phone's offset)."""
    return {
        "Type": "WFDateFormatVariableAggrandizement",
        "WFDateFormatStyle": "ISO 8601",
        "WFISO8601IncludeTime": True,
    }


def shortcut_input() -> Attachment:
    return {"Type": "ExtensionInput"}


def attachment(value: Attachment) -> Plist:
    return {"WFSerializationType": "WFTextTokenAttachment", "Value": value}


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def text(*parts: str | Attachment) -> Plist:
    """A text token: plain parts and variables; offsets are counted in UTF-16 units."""
    string, attachments = "", {}
    for part in parts:
        if isinstance(part, str):
            string += part
        else:
            attachments[f"{{{utf16_length(string)}, 1}}"] = part
            string += OBJECT
    return {
        "WFSerializationType": "WFTextTokenString",
        "Value": {"string": string, "attachmentsByRange": attachments},
    }


def text_field(key: str, *parts: str | Attachment) -> Plist:
    return {"WFItemType": 0, "WFKey": text(key), "WFValue": text(*parts)}


def number_field(key: str, *parts: str | Attachment) -> Plist:
    """A number item: Shortcuts coerces the value to a number (a File Size to its bytes)."""
    return {"WFItemType": 3, "WFKey": text(key), "WFValue": text(*parts)}


def file_field(key: str, value: Attachment) -> Plist:
    # The double wrap (parameter state around an attachment) follows the format brief §9.
    return {
        "WFItemType": 5,
        "WFKey": text(key),
        "WFValue": {
            "WFSerializationType": "WFTokenAttachmentParameterState",
            "Value": attachment(value),
        },
    }


def fields(*items: Plist) -> Plist:
    return {
        "WFSerializationType": "WFDictionaryFieldValue",
        "Value": {"WFDictionaryFieldValueItems": list(items)},
    }


class Builder:
    """Collects actions; UUIDs come from a counter, so the same code gives the same file."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.actions: list[Plist] = []
        self._count = 0

    def _uuid(self) -> str:
        self._count += 1
        return str(uuid.uuid5(_NAMESPACE, f"{self.key}/{self._count}")).upper()

    def add(self, identifier: str, output: str | None = None, **parameters: Any) -> Output:
        """Append an action; with `output`, it publishes a magic variable of that name."""
        published = Output(self._uuid(), output) if output else Output("", "")
        if output:
            parameters["UUID"] = published.uuid
            parameters["CustomOutputName"] = output
        self.actions.append(
            {
                "WFWorkflowActionIdentifier": f"is.workflow.actions.{identifier}",
                "WFWorkflowActionParameters": parameters,
            }
        )
        return published

    def index(self) -> int:
        """The index the next action will have (for import questions)."""
        return len(self.actions)

    def block(self, identifier: str, output: str | None = None, **start: Any) -> Block:
        """A group; with `output`, its end action publishes the block's result."""
        result = Output(self._uuid(), output) if output else None
        return Block(self, identifier, self._uuid(), start, result)


class Block:
    """A control-flow group (If or Repeat): start, optional Otherwise, end."""

    def __init__(
        self,
        builder: Builder,
        identifier: str,
        group: str,
        start: Plist,
        result: Output | None = None,
    ) -> None:
        self.builder = builder
        self.identifier = identifier
        self.group = group
        self.start = start
        self.result = result

    def __enter__(self) -> Block:
        self.builder.add(
            self.identifier, GroupingIdentifier=self.group, WFControlFlowMode=0, **self.start
        )
        return self

    def otherwise(self) -> None:
        """Start the If's Otherwise branch (call inside the `with`, between the branches)."""
        self.builder.add(self.identifier, GroupingIdentifier=self.group, WFControlFlowMode=1)

    def __exit__(self, *exc: object) -> None:
        end: Plist = {"GroupingIdentifier": self.group, "WFControlFlowMode": 2}
        if self.result is not None:
            end["UUID"] = self.result.uuid
            end["CustomOutputName"] = self.result.name
        self.builder.add(self.identifier, **end)


def if_block(
    builder: Builder,
    subject: Attachment,
    condition: int,
    operand: Plist | str | None,
    output: str | None = None,
) -> Block:
    """An If; with `output`, its End If publishes the output of the branch that ran."""
    start: Plist = {
        "WFInput": {"Type": "Variable", "Variable": attachment(subject)},
        "WFCondition": condition,
    }
    if operand is not None:
        start["WFConditionalActionString"] = operand
    return builder.block("conditional", output, **start)


IS, IS_NOT, HAS_VALUE, HAS_NO_VALUE = 4, 5, 100, 101
