"""Mates, their validation and loopflow mate files."""

from __future__ import annotations

import pytest

from loopflow.errors import MateError, MateFileError, UnknownMateError
from loopflow.mates import (
    MAX_PROMPT_CHARS,
    Mate,
    builtin_mate,
    builtin_mates,
    default_models,
    generic_mate,
    load_mate_file,
    parse_mate_file,
    provider_for_model,
    render_mate_file,
    resolve_mate,
    slugify,
)

VALID_FILE = """# Dr. Ada

## System Prompt

You are Ada.

## Tone
(this heading is part of the prompt, not a section)

```
## Provider
inside a fence: still the prompt
```

## Provider

anthropic

## Model

claude-sonnet-4-5

## Temperature

0.3

## Avatar

https://example.com/ada.png

## Description

A   mathematician.
"""


def mate(**changes: object) -> Mate:
    fields: dict[str, object] = {"name": "maya", "display_name": "Maya", "system_prompt": "Hi."}
    fields.update(changes)
    return Mate(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["maya", "a", "x" * 32, "dr-ada_2"])
def test_valid_names(name: str) -> None:
    assert mate(name=name).name == name


@pytest.mark.parametrize("name", ["", "Maya", "x" * 33, "has space", "émile", "a.b", "a/b"])
def test_invalid_names_are_rejected(name: str) -> None:
    with pytest.raises(MateError, match="not a valid mate name"):
        mate(name=name)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"system_prompt": "   "}, "prompt is empty"),
        ({"system_prompt": "x" * (MAX_PROMPT_CHARS + 1)}, "limit is 16,000"),
        ({"provider": "gemini"}, "Unknown provider 'gemini'"),
        ({"display_name": ""}, "display name"),
        ({"display_name": "x" * 81}, "display name"),
        ({"temperature": 2.5}, "temperature must be between"),
        ({"max_output_tokens": 0}, "max output tokens must be between"),
        ({"context_budget": 10}, "context budget must be between"),
        ({"avatar_url": "ftp://x/y.png"}, "not an http"),
        ({"avatar_url": "not a url"}, "not an http"),
        ({"model": "gpt 4"}, "not a model name"),
    ],
)
def test_invalid_fields_are_rejected(changes: dict[str, object], message: str) -> None:
    with pytest.raises(MateError, match=message):
        mate(**changes)


def test_replace_validates() -> None:
    with pytest.raises(MateError):
        mate().replace(provider="nope")
    assert mate().replace(model="gpt-4.1").model == "gpt-4.1"


def test_dict_round_trip_ignores_unknown_fields() -> None:
    original = mate(temperature=0.5, avatar_url="https://e.com/a.png")
    stored = {**original.to_dict(), "field_from_the_future": 1}
    assert Mate.from_dict(stored) == original


def test_parse_mate_file_reads_every_section() -> None:
    parsed = parse_mate_file(VALID_FILE)
    assert parsed.name == "dr-ada"
    assert parsed.display_name == "Dr. Ada"
    assert parsed.provider == "anthropic"
    assert parsed.model == "claude-sonnet-4-5"
    assert parsed.temperature == 0.3
    assert parsed.avatar_url == "https://example.com/ada.png"
    assert parsed.description == "A mathematician."
    assert parsed.system_prompt.startswith("You are Ada.\n\n## Tone")
    assert "inside a fence: still the prompt" in parsed.system_prompt


def test_mate_files_round_trip() -> None:
    for original in [
        parse_mate_file(VALID_FILE),
        mate(max_output_tokens=300, context_budget=4000),
        *builtin_mates().values(),
    ]:
        assert parse_mate_file(render_mate_file(original)) == original


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# Maya\n\n## Provider\nopenai\n", "missing the '## System Prompt' section"),
        ("# Maya\n## System Prompt\nHi\n", "missing the '## Provider' section"),
        ("## System Prompt\nHi\n## Provider\nopenai\n", "missing the '# Name' title"),
        ("# !!!\n## System Prompt\nHi\n## Provider\nopenai\n", "no usable mate name"),
        ("# Maya\n## System Prompt\nHi\n## Provider\ngemini\n", "Unknown provider 'gemini'"),
        ("# Maya\n## System Prompt\n\n## Provider\nopenai\n", "prompt is empty"),
        ("# Maya\n## System Prompt\nHi\n## Provider\nopenai\n## Temperature\nwarm\n", "'warm'"),
        ("# Maya\n## System Prompt\nA\n## System Prompt\nB\n## Provider\nopenai\n", "twice"),
        ("# Maya\nstray text\n## System Prompt\nA\n## Provider\nopenai\n", "unexpected text"),
    ],
)
def test_malformed_files_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(MateFileError, match=message) as caught:
        parse_mate_file(text, source="bad.md")
    assert str(caught.value).startswith("bad.md: ")


def test_load_mate_file_reports_unreadable_files(tmp_path) -> None:
    path = tmp_path / "binary.md"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(MateFileError, match=r"binary\.md: cannot be read"):
        load_mate_file(path)


def test_builtin_mates_have_distinct_substantial_prompts() -> None:
    mates = builtin_mates()
    assert set(mates) == {"maya", "merlin"}
    assert mates["maya"].provider == "openai"
    assert mates["merlin"].provider == "anthropic"
    for each in mates.values():
        assert each.system_prompt.count("\n\n") >= 3  # several paragraphs
        assert len(each.system_prompt) > 1000
    assert builtin_mate("MAYA") == mates["maya"]
    with pytest.raises(UnknownMateError):
        builtin_mate("nobody")


def test_resolve_mate_takes_names_and_files(tmp_path) -> None:
    path = tmp_path / "ada.md"
    path.write_text(VALID_FILE, encoding="utf-8")
    assert resolve_mate("merlin").name == "merlin"
    assert resolve_mate(str(path)).name == "dr-ada"
    with pytest.raises(MateFileError, match="no such file"):
        resolve_mate(str(tmp_path / "missing.md"))


def test_generic_mate_and_helpers() -> None:
    created = generic_mate("code_buddy")
    assert created.display_name == "Code Buddy"
    assert "Code Buddy" in created.system_prompt
    assert slugify("Dr. Ada Lovelace") == "dr-ada-lovelace"
    assert slugify("Émile") == "emile"
    assert provider_for_model("claude-opus-4") == "anthropic"
    assert provider_for_model("Claude-3-haiku") == "anthropic"
    assert provider_for_model("llama3.1:8b") == "openai"


def test_default_models_follow_the_environment() -> None:
    assert default_models({})["openai"] == "gpt-5-mini"
    overridden = default_models({"LOOPFLOW_ANTHROPIC_MODEL": "claude-opus-4-1"})
    assert overridden["anthropic"] == "claude-opus-4-1"
