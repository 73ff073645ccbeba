"""A turn as a model reads it: the message it becomes, notes for images, cutting to fit,
and the walk back from the newest turn that picks what fits in a request.

Shared by the session layer (requests) and memory (fold lines).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from loopflow.errors import NothingToAnswerError
from loopflow.io.discord import prefixed
from loopflow.io.recall import NOTES_SHARE, Recall, Walk
from loopflow.io.rendered import RenderedTurns
from loopflow.io.tokens import IMAGE_TOKENS, MESSAGE_OVERHEAD, TokenCounter
from loopflow.mates import Mate
from loopflow.providers.base import Message

if TYPE_CHECKING:
    from loopflow.io.session import Turn

NEWEST_TURN_FLOOR = 100
"""Tokens of the newest turn kept even when the system prompt leaves less of the budget."""

TRUNCATION_NOTE = "[… message truncated to fit the context budget]"

IMAGE_WINDOW = timedelta(hours=1)
"""Images go to the model only from turns at most this much older than the newest turn.

Discord's CDN links expire about 24 hours after they are issued, and a provider that
cannot fetch one image refuses the whole request: a cached turn's old link would break
the conversation until a reset. An image older than the window (relative to the newest
turn, so an idle conversation picked up again sends none of its old images) becomes an
``[image: name]`` note; resending it on every turn would cost its tokens each time too.
"""


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


def _fresh(newest: datetime | None, turn: Turn) -> bool:
    """Whether ``turn``'s images are within :data:`IMAGE_WINDOW` of ``newest`` (the
    newest time among the turns; None: no turn has one)."""
    return newest is None or turn.time is None or newest - turn.time <= IMAGE_WINDOW


def walk_back(
    mate: Mate,
    turns: Sequence[Turn],
    counter: TokenCounter,
    vision: bool,
    room: int,
    budget: int,
    recall: Recall | None,
    rendered: RenderedTurns | None = None,
) -> Walk:
    """The turns that fit in ``room`` tokens, newest first, from the window's start on
    (``budget`` is the whole request's; ``vision``: whether the model takes images).
    ``rendered`` remembers each turn's message and cost for the next request.

    Raises:
        NothingToAnswerError: the newest turn with anything to read is ``mate``'s own,
            or no turn has anything to read.
    """
    start = recall.start if recall is not None else 0
    opted_out = recall.opted_out if recall is not None else frozenset()
    kept: list[tuple[int, Message, int]] = []
    oldest, used, full, truncated = len(turns), 0, False, False
    # The newest turn's time, looked up at the first turn with images (found at once in
    # a chat's turns, which all have a time): the walk costs what the window holds.
    newest: tuple[datetime | None] | None = None
    name = mate.name
    index = len(turns)
    for turn in reversed(turns):
        index -= 1
        if start and kept and turn.message_id < start:
            break
        if opted_out and not turn.mate and turn.speaker_id in opted_out:
            oldest = index
            continue
        with_images = False
        if vision and turn.images:
            if newest is None:
                newest = (next((t.time for t in reversed(turns) if t.time is not None), None),)
            with_images = _fresh(newest[0], turn)
        own = turn.mate == name
        remembered = None if rendered is None else rendered.get(turn, own, with_images, counter)
        if remembered is not None:
            message, cost = remembered
        else:
            rendering = message_for(mate, turn, with_images)
            if rendering is None:
                oldest = index
                continue
            message = rendering
            cost = counter.count_message(message.text, len(message.images))
            if rendered is not None:
                rendered.keep(turn, own, with_images, counter, message, cost)
        if kept:
            if used + cost > room:
                full = True
                break
        elif message.role != "user":
            raise NothingToAnswerError(f"{mate.display_name} spoke last: nothing to answer.")
        elif cost > room:
            # With memory, leave the notes their share: they are chosen after the walk.
            reserve = budget // NOTES_SHARE if recall is not None else 0
            message = fit_message(message, counter, max(room - reserve, NEWEST_TURN_FLOOR))
            cost = counter.count_message(message.text, len(message.images))
            truncated = True
        used += cost
        oldest = index
        kept.append((index, message, cost))
    if not kept:
        raise NothingToAnswerError(f"Nothing for {mate.display_name} to answer.")
    return Walk(oldest, kept, used, full, truncated)
