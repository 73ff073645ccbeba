"""Discord text rules: message splitting, mentions, speaker prefixes, webhook names.

The splitter's contract is checked exactly by :func:`pieces_of`, which uses its own fence
parser (written from the documented rules, not from the implementation) to remove the
fence lines the splitter added and to find each remaining piece in the original text.
"""

from __future__ import annotations

import random
import re
import time
import unicodedata
from dataclasses import dataclass
from typing import Optional

import pytest
from deadline import seconds_taken

from loopflow.io.discord import (
    DISCORD_MESSAGE_LIMIT,
    clean_display_name,
    prefixed,
    resolve_mentions,
    sanitize_webhook_name,
    scrub_mentions,
    speaker_prefix,
    split_message,
    strip_own_prefix,
)

ZWSP = "\u200b"
OPENER = re.compile(r"[ \t]*(`{3,})[^`]*")
CLOSER = re.compile(r"[ \t]*(`{3,})\s*")


# --- a reference reading of the contract ---------------------------------------------------


@dataclass
class Block:
    start: int  # opener line start
    end: int  # just after the closer's backticks (len(text) + 1 if unterminated)
    opener: str
    closer: str


def blocks(text: str, limit: Optional[int] = None) -> list[Block]:
    """Fenced blocks; with ``limit``, only those whose fence lines fit in a third of it."""
    found, current, offset = [], None, 0
    for line in text.split("\n"):
        if current is None:
            match = OPENER.fullmatch(line)
            if match:
                indent = line[: len(line) - len(line.lstrip(" \t"))]
                current = (offset, line.rstrip(), indent + match.group(1))
        else:
            match = CLOSER.fullmatch(line)
            if match and len(match.group(1)) >= len(current[2].lstrip()):
                found.append(Block(current[0], offset + len(line.rstrip()), *current[1:]))
                current = None
        offset += len(line) + 1
    if current is not None:
        found.append(Block(current[0], len(text) + 1, *current[1:]))
    if limit is None:
        return found
    return [b for b in found if len(b.opener) + 1 + 1 + len(b.closer) <= limit // 3]


def block_at(spans: list[Block], at: int) -> Optional[Block]:
    return next((b for b in spans if b.start < at < b.end), None)


def pieces_of(text: str, parts: list[str], limit: int) -> list[str]:
    """Check the documented contract and return the pieces of ``text`` the parts hold.

    Each part must be reopen + piece + close, the reopen line present exactly when the piece
    starts inside a block (and equal to its opener line), the close line exactly when it
    ends inside one (and equal to its fence); pieces in order, only whitespace between.
    """
    spans = blocks(text, limit)
    pieces, cursor = [], 0
    for index, part in enumerate(parts):
        lines = part.split("\n")
        matches = set()
        for drop_first in (False, True):
            for drop_last in (False, True):
                body = lines[int(drop_first) : len(lines) - int(drop_last)]
                piece = "\n".join(body)
                if not body or not piece.strip():
                    continue
                start = _find_after_whitespace(text, piece, cursor)
                if start is None:
                    continue
                opened = block_at(spans, start)
                closing = block_at(spans, start + len(piece))
                if drop_first != (opened is not None) or drop_last != (closing is not None):
                    continue
                if opened is not None and lines[0] != opened.opener:
                    continue
                if closing is not None and lines[-1] != closing.closer:
                    continue
                matches.add((start, piece))
        assert matches, f"part {index} does not follow the contract: {part!r}"
        # A part ending in a real closer also reads as "piece + added close"; the longer
        # reading is the real one (the splitter never cuts just before a closer line).
        start, piece = max(matches, key=lambda match: len(match[1]))
        pieces.append(piece)
        cursor = start + len(piece)
    assert not text[cursor:].strip(), "text after the last part was lost"
    return pieces


def _find_after_whitespace(text: str, piece: str, cursor: int) -> Optional[int]:
    at = cursor
    while True:
        if text.startswith(piece, at):
            return at
        if at >= len(text) or not text[at].isspace():
            return None
        at += 1


def check_split(text: str, limit: int = DISCORD_MESSAGE_LIMIT) -> list[str]:
    """Split, then assert every invariant of :func:`split_message`."""
    parts = split_message(text, limit)
    if not text.strip():
        assert parts == []
        return parts
    assert parts, "a text with content produced no message"
    for part in parts:
        assert part.strip(), "empty message"
        assert len(part) <= limit, f"{len(part)} > {limit}"
    pieces_of(text, parts, limit)
    if len(blocks(text, limit)) == len(blocks(text)):  # every block is repairable
        for part in parts:
            assert all(b.end <= len(part) for b in blocks(part)), f"unbalanced: {part!r}"
    return parts


# --- split_message: edges ------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "\n\n\t  \n", "\u3000 \r\n"])
def test_nothing_to_send_gives_no_message(text: str) -> None:
    assert split_message(text) == []


def test_short_text_is_one_message_trimmed_of_blank_lines() -> None:
    assert split_message("\n\nhello there\n\n") == ["hello there"]


def test_exactly_the_limit_is_one_message() -> None:
    text = ("word " * 400)[:1999] + "!"
    assert len(text) == 2000 and not text.endswith(" ")
    assert split_message(text) == [text]
    assert split_message("x" * 2000) == ["x" * 2000]


def test_one_over_the_limit_is_two_messages() -> None:
    assert split_message("x" * 2001) == ["x" * 2000, "x"]
    text = "a " * 1000 + "b"  # 2001 characters
    parts = check_split(text)
    assert len(parts) == 2 and all(len(p) <= 2000 for p in parts)


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        split_message("hi", 0)


@pytest.mark.parametrize("limit", [1, 2, 3, 7])
def test_tiny_limits_still_progress(limit: int) -> None:
    text = "```py\nprint('hi')\n```\nZoë 👩‍👩‍👧 ok. done"
    parts = check_split(text, limit)
    assert "".join("".join(parts).split()) == "".join(text.split())


# --- split_message: where to cut -----------------------------------------------------------


def test_prefers_paragraph_breaks() -> None:
    first, second = "a" * 900 + " end.", "b" * 900 + " end."
    text = first + "\n" + "c" * 50 + "\n\n" + second
    assert split_message(text, 1000) == [first + "\n" + "c" * 50, second]


def test_prefers_line_breaks_over_sentences() -> None:
    text = "One. Two. " * 40 + "\n" + "Three. Four. " * 40
    parts = check_split(text, 500)
    assert parts[0] == ("One. Two. " * 40).rstrip()


def test_prefers_sentence_ends_over_spaces() -> None:
    sentence = "This sentence has exactly some words in it. "
    text = sentence * 60
    parts = check_split(text, 500)
    assert all(p.endswith(".") for p in parts)


def test_cjk_sentences_split_after_the_full_stop() -> None:
    text = "这是一个句子。" * 400
    parts = check_split(text, 2000)
    assert all(p.endswith("。") for p in parts)
    assert "".join(parts) == text


def test_falls_back_to_spaces_then_hard_cuts() -> None:
    words = check_split("lorem " * 600, 2000)
    assert all(not p.endswith(" ") and p.startswith("lorem") for p in words)
    url = "https://example.com/" + "a1b2" * 1250  # 5020 characters, no space
    parts = check_split("see " + url + " ok", 2000)
    assert [len(p) for p in parts] == [2000, 2000, 1027]
    assert "".join(parts) == "see " + url + " ok"


def test_hard_cuts_keep_combining_marks_and_emoji_whole() -> None:
    for unit in ("e\u0301", "👩\u200d👩\u200d👧\u200d👦", "👍🏽", "🇫🇷", "❤\ufe0f"):
        text = unit * (4000 // len(unit))
        parts = check_split(text, 2000)
        assert "".join(parts) == text
        assert all(len(p) % len(unit) == 0 for p in parts), unit
        assert all(unicodedata.combining(p[0]) == 0 for p in parts)


def test_windows_line_endings() -> None:
    text = "para one\r\n\r\n```py\r\n" + "x = 1\r\n" * 300 + "```\r\nbye"
    parts = check_split(text, 500)
    assert parts[1].startswith("```py\n") or parts[1].startswith("```py\r")


# --- split_message: code fences ------------------------------------------------------------


def python_block(lines: int, info: str = "python") -> str:
    code = "\n".join(f"    value_{i} = compute({i})  # step {i}" for i in range(lines))
    return f"```{info}\n{code}\n```"


def test_long_code_block_is_closed_and_reopened_with_its_language() -> None:
    text = "Here is the script:\n\n" + python_block(200) + "\n\nRun it."
    parts = check_split(text)
    assert len(parts) >= 3
    for part in parts[1:-1]:
        assert part.startswith("```python\n    value_") and part.endswith("\n```")
    assert parts[0].endswith("\n```") and parts[-1].endswith("Run it.")
    # the code's indentation survives the cut
    assert all(line.startswith("    ") for p in parts[1:] for line in p.split("\n")[1:2])


def test_reopens_with_the_full_info_line() -> None:
    text = python_block(150, info='py title="app.py"')
    parts = check_split(text)
    assert all(p.startswith('```py title="app.py"\n') for p in parts)


def test_a_block_that_fits_whole_moves_to_the_next_message() -> None:
    intro = "word " * 250  # 1250 characters of prose
    block = python_block(25)  # about 930 characters
    text = intro.strip() + "\n\n" + block + "\n\nafter"
    parts = check_split(text)
    assert parts == [intro.strip(), block + "\n\nafter"]


def test_longer_fences_close_with_their_own_length() -> None:
    inner = "```py\nprint(1)\n```\n"
    text = "````markdown\n" + inner * 80 + "````"
    parts = check_split(text, 500)
    assert len(parts) > 2
    assert all(p.startswith("````markdown\n") and p.endswith("\n````") for p in parts)


def test_unterminated_fence_is_closed_in_every_part() -> None:
    text = "Streaming:\n```js\n" + "console.log('tick');\n" * 200  # cut mid-stream
    parts = check_split(text)
    assert all(p.endswith("\n```") for p in parts)
    assert split_message("hello\n```py") == ["hello\n```py\n```"]


def test_indented_fence_in_a_list_keeps_its_indentation() -> None:
    code = "\n".join(f"   echo {i}" for i in range(300))
    text = "1. Run this:\n   ```sh\n" + code + "\n   ```\n2. Done."
    parts = check_split(text, 1000)
    assert all(p.startswith("   ```sh\n") for p in parts[1:])
    assert all(p.endswith("\n   ```") for p in parts[:-1])


def test_a_code_line_longer_than_a_message_is_hard_cut_inside_the_block() -> None:
    text = "```py\n" + "y" * 5000 + "\n```"
    parts = check_split(text)
    assert [len(p) for p in parts] == [2000, 2000, 1030]
    assert all(p.startswith("```py\n") and p.endswith("\n```") for p in parts)


def test_inline_triple_backticks_are_not_fences() -> None:
    text = ("Use ```x``` inline. " * 150).strip()
    parts = check_split(text)
    assert not any(p.endswith("\n```") for p in parts)


def test_pathological_fences_terminate() -> None:
    cases = [
        "```\n" + " \n" * 3000 + "```",  # a block of blank lines longer than a message
        "```" + "x" * 5000 + "\ncode\n```",  # an opener line longer than the limit
        "`" * 4500,
        "\n".join(["```"] * 3000),
    ]
    for text in cases:
        parts = split_message(text)
        assert parts and all(0 < len(p) <= 2000 and p.strip() for p in parts)


# --- split_message: randomized property test -----------------------------------------------

WORDS = "the a mate reply answer cluster deploy kube node pod yaml ok".split()
EXOTIC = ["naïve", "e\u0301clair", "👩‍💻", "🇯🇵", "👍🏾", "日本語", "中文。", "ок", "x" * 60]


def random_markdown(rng: random.Random) -> str:
    blocks_: list[str] = []
    for _ in range(rng.randint(1, 14)):
        kind = rng.random()
        if kind < 0.4:
            words = [rng.choice(WORDS + EXOTIC) for _ in range(rng.randint(1, 300))]
            text = " ".join(w + rng.choice(["", "", "", ".", ",", "!", "?"]) for w in words)
            blocks_.append(text)
        elif kind < 0.5:
            blocks_.append("\n".join(f"- item {i} " + rng.choice(WORDS) for i in range(9)))
        elif kind < 0.55:
            blocks_.append(rng.choice("abz0/+=") * rng.randint(100, 4000))  # base64-like
        elif kind < 0.85:
            ticks = "`" * rng.choice([3, 3, 3, 4])
            info = rng.choice(["", "python", 'py title="x.py"', "js", "diff", "text"])
            lines = []
            for i in range(rng.randint(0, 120)):
                indent = " " * rng.choice([0, 0, 4, 8])
                lines.append(indent + rng.choice([f"call({i})", "", "```py", "# é 中"]))
            if ticks == "```":
                lines = [line for line in lines if "```" not in line]
            lines.append(rng.choice(["x", "y = 2"]))
            indent = rng.choice(["", "", "  "])
            blocks_.append(f"{indent}{ticks}{info}\n" + "\n".join(lines) + f"\n{indent}{ticks}")
        else:
            blocks_.append("中文句子。" * rng.randint(1, 300))
    text = rng.choice(["\n\n", "\n", "\n\n\n"]).join(blocks_)
    if rng.random() < 0.15:
        text += "\n```python\n" + "partial = True\n" * rng.randint(1, 200)  # mid-stream
    return text


@pytest.mark.parametrize("seed", range(250))
def test_random_markdown_keeps_every_invariant(seed: int) -> None:
    rng = random.Random(seed)
    text = random_markdown(rng)
    limit = rng.choice([80, 120, 200, 500, 1000, 2000, 2000])
    check_split(text, limit)


@pytest.mark.parametrize("seed", range(60))
def test_random_text_at_small_limits(seed: int) -> None:
    rng = random.Random(1000 + seed)
    text = random_markdown(rng)[:3000]
    check_split(text, rng.randint(1, 40))


@pytest.mark.parametrize("seed", range(40))
def test_random_text_at_the_limit_edges(seed: int) -> None:
    rng = random.Random(5000 + seed)
    base = random_markdown(rng) + " " + "tail" * 600
    body = "".join(base.split())  # no whitespace: only the lengths decide
    exact = body[:2000]
    assert split_message(exact) == [exact]
    over = body[:2001]
    parts = check_split(over)
    assert len(parts) == 2 and sum(map(len, parts)) == 2001


def test_large_input_is_fast_enough() -> None:
    text = "\n\n".join(random_markdown(random.Random(s)) for s in range(60))
    parts = check_split(text)
    assert len(parts) > 10
    # ~1.5 MB (a model's longest reply is ~100 KB) in under 2 s of this process's CPU time:
    # it takes ~0.4 s; a splitter gone quadratic takes minutes. CPU time, not wall time, so
    # a busy machine does not fail it.
    huge = "\n\n".join([text] * 4)
    started = time.process_time()
    split_message(huge)
    assert time.process_time() - started < 2.0


def _split_hostile_replies() -> None:
    for text in ("." * 100_000, "!?" * 50_000, "…)" * 50_000, '?"' * 50_000):
        parts = split_message(text)
        assert "".join(parts) == text


def test_runs_of_punctuation_split_in_linear_time() -> None:
    # The sentence-end pattern backtracked over each run of "." from every position in
    # it: 100,000 dots (a model asked for them) took seconds per streaming edit.
    assert seconds_taken(3.0, _split_hostile_replies) is not None


def _hostile_names_and_replies() -> None:
    spaces = " " * 50_000
    for name in ("Maya", "Ann Lee", "a " * 40, "*" * 80, ":" * 80):
        strip_own_prefix(name, name + spaces + "x")
        strip_own_prefix(name, "**" + name + spaces + ":" + spaces + "x")
        strip_own_prefix(name, (name + " ") * 5000)
    resolve_mentions("</" + "a" * 50_000 + "<@&" + "1" * 50_000 + "<:" + "a" * 50_000, {})
    resolve_mentions("</a " * 20_000 + "<t:" + "1" * 50_000, {})
    scrub_mentions("@" * 100_000)
    clean_display_name(" \u200b" * 50_000)
    sanitize_webhook_name("clyd" * 50_000)


def test_text_rules_on_hostile_input_run_in_linear_time() -> None:
    assert seconds_taken(3.0, _hostile_names_and_replies) is not None


# --- mentions ------------------------------------------------------------------------------


def test_scrub_neutralises_mass_and_role_mentions() -> None:
    text = "@everyone @here @Everyone <@&123> <@456> <@!789> a@herebefore"
    scrubbed = scrub_mentions(text)
    assert "@everyone" not in scrubbed and "@here" not in scrubbed
    assert "@" + ZWSP + "everyone" in scrubbed and "@" + ZWSP + "Everyone" in scrubbed
    assert "<@&123>" not in scrubbed and "<@&" + ZWSP + "123>" in scrubbed
    assert "<@456>" in scrubbed and "<@!789>" in scrubbed  # users are resolve_mentions' job
    assert scrub_mentions(scrubbed) == scrubbed  # idempotent
    assert scrubbed.replace(ZWSP, "") == text  # reads the same


def test_resolve_turns_markup_into_names() -> None:
    text = "<@1> <@!2> <@3> in <#10> <#11> for <@&20> <:blob:99> <a:dance:98> </mate chat:7>"
    resolved = resolve_mentions(text, {1: "Alice", 2: "Bob\nSmith"}, {10: "general"}, {20: "Ops"})
    assert resolved == "@Alice @Bob Smith <@3> in #general <#11> for @Ops :blob: :dance: /mate chat"


def test_resolve_never_creates_mass_mentions() -> None:
    resolved = resolve_mentions("<@1> <@&2>", {1: "everyone"}, roles={2: "@here"})
    assert resolved == "@" + ZWSP + "everyone @" + ZWSP + "here"


def test_resolve_timestamps() -> None:
    assert resolve_mentions("at <t:1700000000:R>", {}) == "at 2023-11-14 22:13 UTC"
    assert resolve_mentions("<t:1700000000>", {}) == "2023-11-14 22:13 UTC"
    huge = "<t:9999999999999:R>"
    assert resolve_mentions(huge, {}) == huge


# --- speaker prefixes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Alice", "Alice: "),
        ("  Alice\n\tSmith  ", "Alice Smith: "),
        ("", "Someone: "),
        ("\u200b\u202e \n", "Someone: "),
        ("Bob: the builder", "Bob: the builder: "),
        ("x" * 40, "x" * 32 + ": "),
        ("@everyone", "@" + ZWSP + "everyone: "),
        ("👩‍💻 Dev", "👩‍💻 Dev: "),
    ],
)
def test_speaker_prefix(name: str, expected: str) -> None:
    assert speaker_prefix(name) == expected


def test_prefixed() -> None:
    assert prefixed("Alice", "hello\nthere") == "Alice: hello\nthere"


def test_clean_display_name_does_not_split_combining_marks() -> None:
    name = "a" * 31 + "e\u0301xyz"
    assert clean_display_name(name) == "a" * 31


@pytest.mark.parametrize(
    "reply",
    [
        "Maya: Sure thing.",
        "maya:Sure thing.",
        "  MAYA :  Sure thing.",
        "**Maya**: Sure thing.",
        "**Maya:** Sure thing.",
        "*Maya*: Sure thing.",
        "Maya:\n\nSure thing.",
        "Maya：Sure thing.",
    ],
)
def test_strip_own_prefix(reply: str) -> None:
    assert strip_own_prefix("Maya", reply) == "Sure thing."


def test_strip_own_prefix_leaves_other_text_alone() -> None:
    for reply in ("Mayan: a civilisation", "Merlin: hi", "I am Maya: hi", "Sure, Maya: hi"):
        assert strip_own_prefix("Maya", reply) == reply
    assert strip_own_prefix("Maya", "Maya: Maya: twice") == "Maya: twice"
    assert strip_own_prefix("Dr.  Who", "dr. who: yes") == "yes"
    assert strip_own_prefix(" Sir\nMerlin ", "Sir Merlin: yes") == "yes"
    assert strip_own_prefix("", ": hi") == ": hi"


# --- webhook names -------------------------------------------------------------------------


def test_webhook_name_avoids_forbidden_words_but_reads_the_same() -> None:
    for name in ("Clyde", "clyde bot", "Discord Helper", "DISCORD", "myclydediscord"):
        cleaned = sanitize_webhook_name(name)
        assert "clyde" not in cleaned.lower() and "discord" not in cleaned.lower()
        assert len(cleaned) == len(name)
        ascii_fold = cleaned.translate(str.maketrans("еЕоО", "eEoO"))
        assert ascii_fold == name


@pytest.mark.parametrize("name", ["everyone", "Here", "EVERYONE", " here ", "hErE"])
def test_webhook_name_is_never_everyone_or_here(name: str) -> None:
    # Discord refuses a webhook username that is exactly "everyone" or "here" (any case).
    cleaned = sanitize_webhook_name(name)
    assert cleaned.lower() not in ("everyone", "here")
    assert cleaned.translate(str.maketrans("еЕ", "eE")) == name.strip()
    assert sanitize_webhook_name("everyone's mate") == "everyone's mate"
    assert sanitize_webhook_name("Hereford") == "Hereford"


def test_webhook_name_length_and_fallback() -> None:
    assert sanitize_webhook_name("   ") == "Mate"
    assert sanitize_webhook_name("\u200b") == "Mate"
    assert sanitize_webhook_name("Maya") == "Maya"
    assert sanitize_webhook_name(" Maya \n the\tMate ") == "Maya the Mate"
    assert len(sanitize_webhook_name("m" * 200)) == 80
    assert sanitize_webhook_name("M") == "M"
