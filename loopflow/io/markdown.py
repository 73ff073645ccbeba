"""CommonMark's block rules that loopflow mate files use, as linear functions on strings.

* :func:`read_lines`: each line with its ATX heading (level 1 or 2), none inside fences;
* :func:`section_text` and :func:`section_value`: a value written so that it reads back
  unchanged, in a ``verbatim`` code block when plain markdown would not.

No regular expression runs on a line: the heading pattern used before backtracked
cubically on long runs of spaces (23 s for one 2,000-space line).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

VERBATIM = "verbatim"
"""The info string of a code block that holds a value exactly."""


@dataclass(frozen=True)
class Fence:
    """An open code fence: its character (backtick or tilde) and its length."""

    char: str
    length: int

    def closed_by(self, line: str) -> bool:
        """Whether ``line`` closes this fence (CommonMark: at least as long, nothing after)."""
        stripped = line.lstrip(" \t")
        run = len(stripped) - len(stripped.lstrip(self.char))
        return run >= self.length and not stripped[run:].strip()


def read_lines(text: str) -> Iterator[tuple[str, tuple[int, str] | None]]:
    """Each line of ``text`` (split on ``\\n`` only) with its heading ``(level, title)``;
    None for other lines and for every line inside a code fence."""
    fence: Fence | None = None
    for line in text.split("\n"):
        if fence is not None:
            if fence.closed_by(line):
                fence = None
            yield line, None
            continue
        fence = opening_fence(line)
        yield line, None if fence else heading(line)


def section_value(lines: list[str]) -> str:
    """A section's text: its lines, or the inside of a ``verbatim`` block that is all of it."""
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    start = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    body = lines[start:]
    fence = opening_fence(body[0]) if body else None
    if (
        fence is not None
        and len(body) >= 2
        and body[0].strip()[fence.length :].strip() == VERBATIM
        and next((i for i, line in enumerate(body) if i and fence.closed_by(line)), 0)
        == len(body) - 1
    ):
        return "\n".join(body[1:-1])
    return "\n".join(lines)


def section_text(value: str) -> str:
    """``value`` as a section's text that :func:`section_value` reads back unchanged:
    plain when no line of it is a heading or a fence, else in a ``verbatim`` block fenced
    with more backticks than any run inside it (so no line of it can close the block)."""
    if all(found is None and opening_fence(line) is None for line, found in read_lines(value)):
        return value
    longest = run = 0
    for char in value:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{VERBATIM}\n{value}\n{fence}"


def opening_fence(line: str) -> Fence | None:
    """The fence ``line`` opens (CommonMark: 3+ backticks or tildes; no backtick in a
    backtick fence's info string), else None."""
    stripped = line.lstrip(" \t")
    char = stripped[:1]
    if char not in ("`", "~"):
        return None
    run = len(stripped) - len(stripped.lstrip(char))
    if run < 3 or (char == "`" and "`" in stripped[run:]):
        return None
    return Fence(char, run)


def heading(line: str) -> tuple[int, str] | None:
    """``(level, title)`` of a level-1 or level-2 ATX heading, else None.

    CommonMark's rules: ``#`` or ``##`` at the start of the line, then whitespace, then
    the title; an optional closing run of ``#`` preceded by whitespace is dropped
    (``# C#`` is titled ``C#``).
    """
    level = len(line) - len(line.lstrip("#"))
    rest = line[level:]
    if level not in (1, 2) or not rest[:1].isspace():
        return None
    title = rest.strip()
    unclosed = title.rstrip("#")
    if unclosed != title and (not unclosed or unclosed[-1].isspace()):
        title = unclosed.rstrip()
    return (level, title) if title else None
