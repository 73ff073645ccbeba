"""Discord's rules for application commands, as the fake enforces them on a sync.

From Discord's documentation (Application Commands: "Application Command Object",
"Application Command Naming", "Registering a Command"): a chat input command's and an
option's name matches ``^[-_\\p{L}\\p{N}]{1,32}$`` and has no upper case letter where the
letter has a lower case form; a context menu's name has 1 to 32 characters (any case,
spaces allowed) and an empty description; a chat input command's and an option's
description has 1 to 100 characters; at most 25 options (subcommands too) per level,
required options before optional ones, names unique per level; at most 25 choices of
1 to 100 characters, never together with ``autocomplete``; a subcommand group holds
subcommands only; the names, descriptions and choices of one command add up to at most
4,000 characters. A payload that breaks one is refused as Discord refuses it: 400, code
50035 "Invalid Form Body", with an ``errors`` object naming the field.
"""

from __future__ import annotations

from typing import Any

from fake_discord_model import DiscordError

CHAT_INPUT, USER_MENU, MESSAGE_MENU = 1, 2, 3
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, NUMBER = 3, 4, 10
MAX_OPTIONS = 25
MAX_CHOICES = 25
MAX_COMMAND_CHARS = 4000


class FormError(DiscordError):
    """400 Invalid Form Body, with Discord's ``errors`` tree for one field."""

    def __init__(self, path: list[str], code: str, message: str) -> None:
        super().__init__(400, 50035, "Invalid Form Body")
        self.path = path
        self.detail = message
        errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
        for key in reversed(path):
            errors = {key: errors}
        self.errors = errors

    def payload(self) -> dict[str, Any]:
        """Discord's body: message, code and the field's errors."""
        return {**super().payload(), "errors": self.errors}

    def __str__(self) -> str:
        return f"400 50035 Invalid Form Body: {'.'.join(self.path)}: {self.detail}"


def check_commands(commands: list[dict[str, Any]]) -> None:
    """Check a bulk overwrite (``PUT .../commands``): every command, and no two of one
    type with the same name."""
    seen: set[tuple[int, str]] = set()
    for index, command in enumerate(commands):
        check_command(command, [str(index)])
        key = (int(command.get("type", CHAT_INPUT)), str(command.get("name")))
        if key in seen:
            raise FormError([str(index), "name"], "APPLICATION_COMMANDS_DUPLICATE_NAME", "taken")
        seen.add(key)


def check_command(command: dict[str, Any], path: list[str]) -> None:
    """Check one command of the payload (see the module docstring)."""
    kind = int(command.get("type", CHAT_INPUT))
    name = command.get("name")
    if kind in (USER_MENU, MESSAGE_MENU):
        if not isinstance(name, str) or not 1 <= len(name) <= 32:
            raise FormError([*path, "name"], "BASE_TYPE_BAD_LENGTH", "Must be 1-32 characters")
        if command.get("description") or command.get("options"):
            raise FormError(
                [*path, "description"], "CONTEXT_MENU_FIELDS", "Context menus take no description"
            )
        return
    if kind != CHAT_INPUT:
        raise FormError([*path, "type"], "BASE_TYPE_CHOICES", "Value must be one of (1, 2, 3)")
    _check_named(command, path)
    _check_options(command.get("options") or [], [*path, "options"], depth=0)
    if _characters(command) > MAX_COMMAND_CHARS:
        raise FormError(path, "APPLICATION_COMMAND_TOO_LARGE", "Command exceeds maximum size")


def _check_named(item: dict[str, Any], path: list[str]) -> None:
    name = item.get("name")
    if not isinstance(name, str) or not valid_name(name):
        raise FormError(
            [*path, "name"], "APPLICATION_COMMAND_INVALID_NAME", f"Invalid name: {name!r}"
        )
    description = item.get("description")
    if not isinstance(description, str) or not 1 <= len(description) <= 100:
        raise FormError(
            [*path, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
        )


def valid_name(name: str) -> bool:
    """Discord's chat input naming rule (``^[-_\\p{L}\\p{N}]{1,32}$``, lower case)."""
    return (
        1 <= len(name) <= 32
        and all(c in "-_" or c.isalnum() for c in name)
        and name == name.lower()
    )


def _check_options(options: list[dict[str, Any]], path: list[str], depth: int) -> None:
    if len(options) > MAX_OPTIONS:
        raise FormError(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    names = [o.get("name") for o in options]
    if len(set(names)) != len(names):
        raise FormError(path, "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS", "duplicate")
    subs = [o for o in options if o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP)]
    if subs and len(subs) != len(options):
        raise FormError(path, "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", "mixed subcommands")
    optional_seen = False
    for index, option in enumerate(options):
        here = [*path, str(index)]
        _check_named(option, here)
        kind = option.get("type")
        if kind == SUB_COMMAND_GROUP:
            if depth > 0 or any(o.get("type") != SUB_COMMAND for o in option.get("options") or []):
                raise FormError(here, "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", "bad nesting")
            _check_options(option.get("options") or [], [*here, "options"], depth + 1)
            continue
        if kind == SUB_COMMAND:
            if depth > 1:
                raise FormError(here, "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", "bad nesting")
            _check_options(option.get("options") or [], [*here, "options"], depth + 2)
            continue
        if option.get("required"):
            if optional_seen:
                raise FormError(
                    [*here, "required"],
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True
        _check_choices(option, here)


def _check_choices(option: dict[str, Any], path: list[str]) -> None:
    choices = option.get("choices") or []
    if option.get("autocomplete"):
        if option.get("type") not in (STRING, INTEGER, NUMBER):
            raise FormError([*path, "autocomplete"], "AUTOCOMPLETE_INVALID", "type")
        if choices:
            raise FormError(
                [*path, "autocomplete"],
                "APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_AND_CHOICES",
                "Autocomplete cannot be set with choices",
            )
    if len(choices) > MAX_CHOICES:
        raise FormError([*path, "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer")
    for index, choice in enumerate(choices):
        if not 1 <= len(str(choice.get("name", ""))) <= 100:
            raise FormError([*path, "choices", str(index), "name"], "BASE_TYPE_BAD_LENGTH", "1-100")


def _characters(item: dict[str, Any]) -> int:
    """The characters Discord counts towards a command's 4,000."""
    count = len(str(item.get("name", ""))) + len(str(item.get("description", "")))
    for choice in item.get("choices") or []:
        count += len(str(choice.get("name", ""))) + len(str(choice.get("value", "")))
    return count + sum(_characters(option) for option in item.get("options") or [])


def check_autocomplete_choices(choices: Any) -> None:
    """An autocomplete answer (callback type 8): at most 25 choices whose names and string
    values have 1 to 100 characters."""
    if not isinstance(choices, list) or len(choices) > MAX_CHOICES:
        raise FormError(["data", "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer")
    for index, choice in enumerate(choices):
        name, value = str(choice.get("name", "")), choice.get("value")
        if not 1 <= len(name) <= 100 or (isinstance(value, str) and not 1 <= len(value) <= 100):
            raise FormError(
                ["data", "choices", str(index)], "BASE_TYPE_BAD_LENGTH", "Must be 1-100 long"
            )


def check_components(components: Any) -> None:
    """A message's components: action rows (at most 5) of buttons or one select; a select
    has a custom_id of 1 to 100 characters and 1 to 25 options whose labels, values and
    descriptions have at most 100 characters."""
    rows = components or []
    if len(rows) > 5:
        raise FormError(["components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer")
    for r, row in enumerate(rows):
        for c, item in enumerate(row.get("components") or []):
            if item.get("type") != 3:
                continue
            here = ["components", str(r), "components", str(c)]
            options = item.get("options") or []
            if not 1 <= len(str(item.get("custom_id", ""))) <= 100:
                raise FormError([*here, "custom_id"], "BASE_TYPE_BAD_LENGTH", "1-100")
            if not 1 <= len(options) <= 25:
                raise FormError([*here, "options"], "BASE_TYPE_BAD_LENGTH", "Must be 1-25")
            for o, option in enumerate(options):
                for key in ("label", "value", "description"):
                    text = option.get(key)
                    if text is not None and not 1 <= len(str(text)) <= 100:
                        raise FormError(
                            [*here, "options", str(o), key], "BASE_TYPE_BAD_LENGTH", "1-100"
                        )
