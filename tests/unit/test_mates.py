"""Mates, their validation and loopflow mate files."""

from __future__ import annotations

import random

import pytest
from deadline import seconds_taken

from loopflow.errors import MateError, MateFileError, UnknownMateError
from loopflow.mates import (
    MAX_PROMPT_CHARS,
    Mate,
    builtin_mate,
    builtin_mates,
    generic_mate,
    load_mate_file,
    parse_mate_file,
    provider_for_model,
    render_mate_file,
    resolve_mate,
    slugify,
    validate_url,
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


# --- hostile text: backtracking, round trips, bad values -----------------------------------

HOSTILE_HEADINGS = [
    "# a" + " " * 2000 + "x",
    "## a" + " " * 2000 + "x",
    "# " + "#" * 2000 + " " * 2000 + "x",
    "## Provider" + " #" * 1000 + "x",
    "#\t" + "\t " * 1500 + "x",
]


def _parse_hostile_file() -> None:
    lines: list[str] = []
    while sum(len(line) + 1 for line in lines) < 60_000:
        lines.append(HOSTILE_HEADINGS[len(lines) % len(HOSTILE_HEADINGS)])
    body = "\n".join(lines)
    text = f"# Maya\n## System Prompt\nHi.\n{body}\n## Provider\nopenai\n"
    assert 60_000 < len(text.encode()) <= 64_000  # the import limit
    try:
        parse_mate_file(text)
    except MateError:
        pass  # a prompt this long is refused; what matters is that the answer comes at once


def test_a_hostile_mate_file_parses_in_linear_time() -> None:
    # Before the fix, one of these lines took 23 s (cubic backtracking in the heading regex).
    taken = seconds_taken(5.0, _parse_hostile_file)
    assert taken is not None, "parsing a 64 KB mate file took more than 5 s"


@pytest.mark.parametrize(
    ("line", "heading"),
    [
        ("# Maya", (1, "Maya")),
        ("# Maya ##", (1, "Maya")),
        ("## Provider ##   ", (2, "Provider")),
        ("#\tMaya", (1, "Maya")),
        ("# C#", (1, "C#")),  # a closing sequence needs a space before it (CommonMark)
        ("# Room # #", (1, "Room #")),
        ("# #1 fan", (1, "#1 fan")),
        ("### Deeper", None),
        ("#Maya", None),
        (" # Maya", None),
        ("# ", None),
    ],
)
def test_headings_follow_commonmark(line: str, heading: tuple[int, str] | None) -> None:
    text = f"{line}\n## System Prompt\nHi.\n## Provider\nopenai\n"
    if heading is None or heading[0] != 1:
        with pytest.raises(MateFileError):
            parse_mate_file(text)
    else:
        assert parse_mate_file(text).display_name == heading[1]


DANGEROUS_LINES = [
    "## Provider",
    "## Description",
    "## System Prompt",
    "## provider ##",
    "## Avatar",
    "# Title",
    "# Maya #",
    "```",
    "```python",
    "~~~",
    "````",
    "~~~~ text",
    "   ```",
    "```verbatim",
    "``` ",
    "## Tone ###",
    "plain words",
    "trailing hashes ##",
    "",
    "   ",
    "\\## escaped",
    "<!-- comment -->",
    "\u2028separated\u2029",
    "tab\tand\x0bvertical\x0cfeed",
]


def _random_prompt(rng: random.Random) -> str:
    lines = [rng.choice(DANGEROUS_LINES) for _ in range(rng.randint(1, 12))]
    lines.insert(rng.randrange(len(lines) + 1), "You are a mate.")
    return rng.choice(["\n", "\r\n", "\r"]).join(lines)


def test_every_prompt_survives_export_and_import() -> None:
    rng = random.Random(20260418)
    for _ in range(2000):
        original = mate(system_prompt=_random_prompt(rng))
        rendered = render_mate_file(original)
        assert parse_mate_file(rendered) == original, rendered


@pytest.mark.parametrize(
    "changes",
    [
        {"display_name": "C#"},
        {"display_name": "Room #"},
        {"display_name": "## Provider"},
        {"display_name": "```"},
        {"description": "## Provider"},
        {"description": "```"},
        {"description": "~~~ fenced"},
        {"description": "# heading"},
        {"name": "bob", "display_name": "Robert"},
        {"system_prompt": "```verbatim\nHi.\n```"},
        {"system_prompt": "Hi.\n````\n## Provider\n```"},
        {"system_prompt": "x" * MAX_PROMPT_CHARS},
    ],
)
def test_every_field_survives_export_and_import(changes: dict[str, object]) -> None:
    original = mate(**changes)
    assert parse_mate_file(render_mate_file(original)) == original


def test_line_endings_are_normalised_in_prompts() -> None:
    assert mate(system_prompt="a\r\nb\rc\nd").system_prompt == "a\nb\nc\nd"
    crlf_file = VALID_FILE.replace("\n", "\r\n")
    assert parse_mate_file(crlf_file) == parse_mate_file(VALID_FILE)


def test_plain_prompts_are_exported_plain() -> None:
    # Only prompts that need it are wrapped: the built-in files stay readable markdown.
    maya = builtin_mate("maya")
    assert "## System Prompt\n\nYou are Maya" in render_mate_file(maya)
    assert "verbatim" not in render_mate_file(maya)


@pytest.mark.parametrize(
    "url",
    [
        "https://[x",
        "http://",
        "https://",
        "javascript:alert(1)",
        "data:image/png;base64,AAAA",
        "https://exa mple.com/a.png",
        "https://example.com/a\n.png",
        "https://example.com\t/a.png",
        "https://example.com:99999/a.png",
        "https://:80/a.png",
        "https://example.com/" + "a" * 3000,
        "",
    ],
)
def test_bad_urls_are_mate_errors(url: str) -> None:
    with pytest.raises(MateError, match="not an http"):
        validate_url(url)
    with pytest.raises(MateError):
        mate(avatar_url=url) if url else validate_url(url)


def test_good_urls_pass() -> None:
    for url in ("https://example.com/a.png", "http://[::1]:8080/a.png", "https://e.com:443/x?y=1"):
        assert validate_url(url) == url


@pytest.mark.parametrize(
    "changes",
    [
        {"name": 5},
        {"display_name": None},
        {"system_prompt": b"bytes"},
        {"provider": ["openai"]},
        {"temperature": "warm"},
        {"max_output_tokens": 1.5},
        {"max_output_tokens": True},
        {"context_budget": "big"},
        {"avatar_url": 7},
        {"description": 3},
    ],
)
def test_wrong_types_are_mate_errors(changes: dict[str, object]) -> None:
    with pytest.raises(MateError):
        mate(**changes)


def test_a_mates_chime_chance_is_a_percent_kept_in_its_file() -> None:
    chiming = mate(chime=35)
    assert chiming.chime == 35 and mate().chime == 0
    rendered = render_mate_file(chiming)
    assert "## Chime\n\n35\n" in rendered
    assert parse_mate_file(rendered) == chiming
    assert "## Chime" not in render_mate_file(mate())  # the default needs no section
    assert Mate.from_dict(chiming.to_dict()) == chiming
    for bad in (-1, 101):
        with pytest.raises(MateError, match="chime must be between 0 and 100"):
            mate(chime=bad)
    with pytest.raises(MateFileError, match="'often' is not a valid int"):
        parse_mate_file("# Maya\n## System Prompt\nHi\n## Provider\nopenai\n## Chime\noften\n")
