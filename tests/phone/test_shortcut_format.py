"""The generated .shortcut files follow the format brief, without an iPhone."""

from __future__ import annotations

import copy
import plistlib
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from app.cli.commands import main
from app.config import Settings
from app.phone.plist import text, variable
from app.phone.shortcut import (
    BACKUP_FILE,
    FREE_UP_FILE,
    SERVER_PLACEHOLDER,
    SHARE_FILE,
    TOKEN_PLACEHOLDER,
    WIFI_PLACEHOLDER,
    build_all,
    shortcut_bytes,
)
from tests.support.shortcut_rules import ACTIONS, problems, text_tokens

SHORTCUTS_DIR = Path(__file__).resolve().parents[2] / "shortcuts"
BUILT = build_all()


def actions_of(plist: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (a["WFWorkflowActionIdentifier"], a["WFWorkflowActionParameters"])
        for a in plist["WFWorkflowActions"]
    ]


@pytest.mark.parametrize("filename", sorted(BUILT))
def test_shortcut_follows_every_format_rule(filename: str) -> None:
    """No rule of the brief's checklist is broken (actions, keys, UUIDs, groups, tokens)."""
    assert problems(BUILT[filename]) == []


@pytest.mark.parametrize("filename", sorted(BUILT))
def test_committed_file_is_the_generators_output(filename: str) -> None:
    """shortcuts/*.shortcut are exactly what `photo-relay shortcuts build` writes."""
    committed = (SHORTCUTS_DIR / filename).read_bytes()
    assert committed == shortcut_bytes(BUILT[filename]), (
        "shortcuts/ is out of date: run `photo-relay shortcuts build` and commit the result"
    )


@pytest.mark.parametrize("filename", sorted(BUILT))
def test_plist_round_trips_with_the_right_root_types(filename: str) -> None:
    """XML and binary plist both load back to the same dictionary, with int/str versions."""
    plist = BUILT[filename]
    for fmt in (plistlib.FMT_XML, plistlib.FMT_BINARY):
        assert plistlib.loads(plistlib.dumps(plist, fmt=fmt)) == plist
    loaded = plistlib.loads((SHORTCUTS_DIR / filename).read_bytes())
    assert type(loaded["WFWorkflowMinimumClientVersion"]) is int
    assert loaded["WFWorkflowMinimumClientVersionString"] == "900"
    assert isinstance(loaded["WFWorkflowClientVersion"], str)


def test_validator_catches_broken_shortcuts() -> None:
    """Each kind of damage is reported, so a passing check means something."""
    backup = BUILT[BACKUP_FILE]

    def broken(change: Any) -> list[str]:
        plist = copy.deepcopy(backup)
        change(plist["WFWorkflowActions"], plist)
        return problems(plist)

    def unknown_key(actions: list[dict[str, Any]], _: Any) -> None:
        actions[1]["WFWorkflowActionParameters"]["WFMadeUp"] = 1

    def late_output(actions: list[dict[str, Any]], _: Any) -> None:
        actions.insert(3, actions.pop(4))  # the first request before the Wi-Fi name it sends

    def unclosed(actions: list[dict[str, Any]], _: Any) -> None:
        ends = [
            i
            for i, a in enumerate(actions)
            if a["WFWorkflowActionParameters"].get("WFControlFlowMode") == 2
        ]
        del actions[ends[-1]]

    def shifted_token(actions: list[dict[str, Any]], _: Any) -> None:
        request = next(a for a in actions if "WFURL" in a["WFWorkflowActionParameters"])
        url = request["WFWorkflowActionParameters"]["WFURL"]["Value"]
        url["string"] = " " + url["string"]

    def question_on_token(_: Any, plist: dict[str, Any]) -> None:
        plist["WFWorkflowImportQuestions"][0]["ParameterKey"] = "WFInput"

    assert any("unknown parameter WFMadeUp" in p for p in broken(unknown_key))
    assert any("not an earlier action" in p for p in broken(late_output))
    assert any("never closed" in p for p in broken(unclosed))
    assert any("does not point at U+FFFC" in p for p in broken(shifted_token))
    assert any("no plain-string" in p for p in broken(question_on_token))


def test_token_offsets_count_utf16_units() -> None:
    """A character above U+FFFF counts twice before a variable's U+FFFC."""
    token = text("📷 ", variable("A"), " é ", variable("B"))["Value"]
    assert set(token["attachmentsByRange"]) == {"{3, 1}", "{7, 1}"}


@pytest.mark.parametrize("filename", sorted(BUILT))
def test_every_action_is_one_we_list(filename: str) -> None:
    """Identifiers are among the brief's actions and every token is well formed."""
    used = {identifier for identifier, _ in actions_of(BUILT[filename])}
    assert used <= set(ACTIONS)
    assert text_tokens(BUILT[filename])


def test_import_questions_ask_for_server_token_and_wifi_only() -> None:
    """Nothing personal is in the files: each value the user gives is an import question."""
    expected = {
        BACKUP_FILE: [SERVER_PLACEHOLDER, TOKEN_PLACEHOLDER, WIFI_PLACEHOLDER],
        SHARE_FILE: [SERVER_PLACEHOLDER, TOKEN_PLACEHOLDER],
        FREE_UP_FILE: [SERVER_PLACEHOLDER, TOKEN_PLACEHOLDER],
    }
    for filename, plist in BUILT.items():
        questions = plist["WFWorkflowImportQuestions"]
        assert [q["DefaultValue"] for q in questions] == expected[filename]
        for question in questions:
            identifier, params = actions_of(plist)[question["ActionIndex"]]
            assert identifier == "is.workflow.actions.gettext"
            assert params[question["ParameterKey"]] == question["DefaultValue"]
        assert b"prd_" not in shortcut_bytes(plist)


def test_share_sheet_shortcut_accepts_images_videos_and_files() -> None:
    """Send to photo-relay shows in the share sheet for photos, videos and files."""
    share, backup = BUILT[SHARE_FILE], BUILT[BACKUP_FILE]
    assert "ActionExtension" in share["WFWorkflowTypes"]
    assert {
        "WFImageContentItem",
        "WFAVAssetContentItem",
        "WFGenericFileContentItem",
        "WFPhotoMediaContentItem",
    } <= set(share["WFWorkflowInputContentItemClasses"])
    assert share["WFWorkflowHasShortcutInputVariables"] is True
    assert "ActionExtension" not in backup["WFWorkflowTypes"]


def test_backup_leaves_the_wifi_decision_to_the_service() -> None:
    """The Wi-Fi name goes with the first request; no check in the shortcut stops silently."""
    steps = [identifier.rsplit(".", 1)[-1] for identifier, _ in actions_of(BUILT[BACKUP_FILE])]
    assert steps.index("getwifi") < steps.index("downloadurl")
    assert "exit" not in steps


# Issue 14 aimed at 40 for the backup; issue 19's album adds 6 (collect the verified photos
# while walking, add them to the album once everything is sent), so 44.
@pytest.mark.parametrize(
    ("filename", "most"), [(BACKUP_FILE, 44), (SHARE_FILE, 20), (FREE_UP_FILE, 30)]
)
def test_shortcuts_are_short_enough_to_build_by_hand(filename: str, most: int) -> None:
    """At most 44 actions for the backup, 20 for the share sheet, 30 to free up space."""
    assert len(BUILT[filename]["WFWorkflowActions"]) <= most


def test_cli_build_writes_both_files(tmp_path: Path) -> None:
    """`photo-relay shortcuts build --output DIR` writes the two generated files."""
    result = CliRunner().invoke(main, ["shortcuts", "build", "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for filename, plist in BUILT.items():
        assert (tmp_path / filename).read_bytes() == shortcut_bytes(plist)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(BUILT)


def test_user_guide_is_linked_and_names_real_settings() -> None:
    """The main README links the Shortcuts guide; the guide names only existing settings."""
    root = SHORTCUTS_DIR.parent
    guide = (SHORTCUTS_DIR / "README.md").read_text()
    assert "(shortcuts/README.md)" in (root / "README.md").read_text()
    assert "shortcuts sign --mode anyone --input" in guide
    named = set(re.findall(r"PHOTO_RELAY_([A-Z0-9_]+)", guide))
    assert named and {n.lower() for n in named} <= set(Settings.model_fields)


def test_recipe_names_every_path_the_shortcuts_call() -> None:
    """Each URL path in the generated files appears in the build-by-hand recipe."""
    guide = (SHORTCUTS_DIR / "README.md").read_text()
    for plist in BUILT.values():
        for _, params in actions_of(plist):
            if "WFURL" in params:
                path = params["WFURL"]["Value"]["string"].replace("\ufffc", " ").split()
                assert all(f"`{part}`" in guide for part in path), path


# How the recipe names each action (and each block's start, Otherwise and end).
RECIPE_NAMES = {
    "Text": ("gettext", None),
    "Get Network Details": ("getwifi", None),
    "Get Contents of URL": ("downloadurl", None),
    "If": ("conditional", 0),
    "Otherwise": ("conditional", 1),
    "End If": ("conditional", 2),
    "Set Variable": ("setvariable", None),
    "Repeat": ("repeat.count", 0),
    "Repeat with Each": ("repeat.each", 0),
    "End Repeat": ("repeat", 2),
    "Find Photos": ("filter.photos", None),
    "Dictionary": ("dictionary", None),
    "Get Dictionary Value": ("getvalueforkey", None),
    "Generate Hash": ("hash", None),
    "Show Notification": ("notification", None),
    "Get Name": ("getitemname", None),
    "Add to Variable": ("appendvariable", None),
    "Save to Photo Album": ("savetocameraroll", None),
    "Delete Photos": ("deletephotos", None),
}


def recipe_steps(which: str) -> list[tuple[str, int | None]]:
    guide = (SHORTCUTS_DIR / "README.md").read_text()
    block = guide.split(f"<!-- recipe: {which} -->", 1)[1].split("<!-- end recipe -->", 1)[0]
    steps = re.findall(r"^(\d+)\. \*\*([^*]+)\*\*", block, flags=re.MULTILINE)
    assert [int(n) for n, _ in steps] == list(range(1, len(steps) + 1)), "numbering"
    return [RECIPE_NAMES[name] for _, name in steps]


def generated_steps(plist: dict[str, Any]) -> list[tuple[str, int | None]]:
    found: list[tuple[str, int | None]] = []
    for identifier, params in actions_of(plist):
        name = identifier.removeprefix("is.workflow.actions.")
        mode = params.get("WFControlFlowMode")
        if mode == 2 and name.startswith("repeat"):
            name = "repeat"
        found.append((name, mode))
    return found


@pytest.mark.parametrize(
    ("which", "filename"),
    [("backup", BACKUP_FILE), ("share", SHARE_FILE), ("free-up", FREE_UP_FILE)],
)
def test_hand_build_recipe_matches_the_generated_file(which: str, filename: str) -> None:
    """shortcuts/README.md lists the generated actions one for one, in order."""
    assert recipe_steps(which) == generated_steps(BUILT[filename])


def test_guide_says_what_an_unattended_run_needs_and_what_is_backed_up() -> None:
    """Issue 14's last two rows: the prompts a locked phone cannot answer, and no claim
    that an edited photo's original is kept."""
    guide = (SHORTCUTS_DIR / "README.md").read_text()
    for needed in (
        "Run the backup once by hand",
        "Always Allow",
        "Allow Sharing Large Amounts of Data",
        "Run Immediately",
        "Run After Connection Interruption",
        "After every iOS update",
        "Edited photos: only the edited version",
        "Live Photos: the still only",
        "Shared Albums: included",
    ):
        assert needed in guide, needed
    assert "kept alongside" not in guide
