"""Notes about people: short facts a mate keeps per (server, mate, person), oldest first.

PRODUCT.md section 10. A fold's reply may carry notes (:func:`~loopflow.chat.folding.
parse_fold`); a person may add or remove their own (the cog's memory commands). Each
is one line (:func:`clean_note`), and a person's list is kept by :func:`add_note`:
normalised, de-duplicated, at most :data:`NOTES_PER_PERSON` of at most
:data:`NOTE_CHARS` characters.
"""

from __future__ import annotations

from collections.abc import Sequence

NOTES_PER_PERSON = 20
"""A person's notes per mate and server; the oldest goes when a new one would pass this."""

NOTE_CHARS = 200
"""A note's length in characters; a longer fact is cut at a word and ends with "…"."""

_TRAILING = ".!;,: "


def clean_note(fact: str) -> str:
    """``fact`` on one line, trimmed, at most :data:`NOTE_CHARS` characters ("" if empty)."""
    text = " ".join(fact.split()).strip(" -•")
    if len(text) > NOTE_CHARS:
        cut = text[: NOTE_CHARS - 1]
        text = (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(_TRAILING) + "…"
    return text


def add_note(facts: Sequence[str], fact: str) -> list[str]:
    """``facts`` (oldest first) with ``fact`` added as the newest.

    The fact is cleaned (:func:`clean_note`); one equal to a kept fact after
    normalising (case, spacing, final punctuation) replaces it, so it is not dropped as
    old; beyond :data:`NOTES_PER_PERSON` the oldest go. An empty fact changes nothing.
    """
    text = clean_note(fact)
    if not text:
        return list(facts)
    key = _note_key(text)
    kept = [old for old in facts if _note_key(old) != key]
    kept.append(text)
    return kept[-NOTES_PER_PERSON:]


def _note_key(text: str) -> str:
    return " ".join(text.casefold().split()).rstrip(_TRAILING)
