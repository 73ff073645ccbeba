"""A turn as a model reads it: the message it becomes, notes for images, cutting to fit.

Shared by the session layer (requests) and memory (fold lines).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from loopflow.io.discord import prefixed
from loopflow.io.tokens import IMAGE_TOKENS, MESSAGE_OVERHEAD, TokenCounter
from loopflow.mates import Mate
from loopflow.providers.base import Message

if TYPE_CHECKING:
    from loopflow.io.session import Turn

NEWEST_TURN_FLOOR = 100
"""Tokens of the newest turn kept even when the system prompt leaves less of the budget."""

TRUNCATION_NOTE = "[… message truncated to fit the context budget]"


def message_for(mate: Mate, turn: Turn, with_images: bool) -> Message | None:
    """``turn`` as ``mate`` sees it, or None when it carries nothing to say.

    Without ``with_images`` (a model without vision, an image past :data:`IMAGE_WINDOW`)
    each image becomes an ``[image: name]`` note.
    """
    images = turn.images if with_images else ()
    text = turn.content
    if turn.images and not with_images:
        text = (text + image_notes(turn)).strip()
    if not text and not images:
        return None
    if turn.mate == mate.name:
        return Message("assistant", text)
    return Message("user", prefixed(turn.display_name, text), images)


def image_notes(turn: Turn) -> str:
    """What stands for ``turn``'s images where they are not sent: ``"\n[image: cat.png]"``
    per image ("" without images)."""
    return "".join(f"\n[image: {_image_name(url)}]" for url in turn.images)


def fit_message(message: Message, counter: TokenCounter, room: int) -> Message:
    """``message`` cut to cost at most ``room`` tokens, with notes saying what was cut.

    Images go first when they leave less than :data:`NEWEST_TURN_FLOOR` tokens for the
    text (each counts :data:`~loopflow.io.tokens.IMAGE_TOKENS`); then the text is cut
    and ends with :data:`TRUNCATION_NOTE`.
    """
    images = message.images
    text = message.text
    spare = room - MESSAGE_OVERHEAD - NEWEST_TURN_FLOOR
    if len(images) * IMAGE_TOKENS > spare:
        kept = max(0, spare) // IMAGE_TOKENS
        text += f"\n[{len(images) - kept} image(s) left out to fit the context budget]"
        images = images[:kept]
    room -= MESSAGE_OVERHEAD + len(images) * IMAGE_TOKENS
    if counter.count(text) > room:
        note = "\n" + TRUNCATION_NOTE
        text = counter.truncate(text, room - counter.count(note)).rstrip() + note
    return Message(message.role, text, images)


def _image_name(url: str) -> str:
    """The file name at the end of an image URL's path (``cat.png``), else ``image``."""
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or "image"
