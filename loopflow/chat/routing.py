"""Which mates answer a message in a place where several may speak.

A message that names mates ("maya, ...", "what do you think, merlin?") goes to those
mates, each answering in turn in the order they are named; an unaddressed message goes
to the mate that spoke last in the conversation, else to the first one bound there.
A mate's own message never triggers a mate: callers only route people's messages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """A mate that may answer here: its name and the display name people call it by."""

    name: str
    display_name: str


def addressed(text: str, candidates: Sequence[Candidate]) -> list[str]:
    """Names of the mates ``text`` addresses, in the order they first appear."""
    found: list[tuple[int, str]] = []
    for candidate in candidates:
        positions = [
            match.start()
            for alias in {candidate.name, candidate.display_name}
            if alias
            for match in _alias_pattern(alias).finditer(text)
        ]
        if positions:
            found.append((min(positions), candidate.name))
    return [name for _, name in sorted(found)]


def route(text: str, candidates: Sequence[Candidate], last_speaker: str | None = None) -> list[str]:
    """The mates that answer ``text``, in order; empty when no mate may answer here."""
    if not candidates:
        return []
    named = addressed(text, candidates)
    if named:
        return named
    names = [candidate.name for candidate in candidates]
    if last_speaker in names:
        return [last_speaker]
    return [names[0]]


def _alias_pattern(alias: str) -> re.Pattern[str]:
    # A whole word, optionally as a mention-like "@maya"; not "mayan" or "amaya".
    return re.compile(rf"(?<![\w-])@?{re.escape(alias)}(?![\w-])", re.IGNORECASE)
