"""The contract between a mate's reply and the chat it shows in.

A :class:`~loopflow.chat.bot.MateBot` writes a reply into a :class:`Sink` (one per
reply): Discord's posts and edits messages as the mate, a terminal prints, a test
records. What the reply came to is an :class:`Outcome`, failures included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, runtime_checkable

from loopflow.chat.streaming import DeliveryFailed, TextRefused
from loopflow.errors import LoopflowError
from loopflow.io.session import Turn, budget_warnings
from loopflow.providers.base import Usage


class Handle(Protocol):
    """A message the sink posted."""

    @property
    def id(self) -> int:
        """The chat's id of the message (unique in the chat)."""

    @property
    def room(self) -> int:
        """Characters of the mate's words the message can show."""


H = TypeVar("H", bound=Handle)


class Sink(Protocol[H]):
    """The chat a reply shows in: one sink per reply.

    ``post`` and ``edit`` raise :class:`~loopflow.chat.streaming.TextRefused` when the
    chat refuses the text (the reply ends), ``edit`` raises
    :class:`~loopflow.chat.streaming.MessageGone` for a deleted message, and both raise
    :class:`~loopflow.chat.streaming.DeliveryFailed` when the chat could not take it.
    """

    def part_limit(self) -> int:
        """Characters the reply's first part may have, as far as known before posting."""

    async def post(self, text: str) -> H:
        """Post the reply's next part; its handle says how much room it really had."""

    async def edit(self, handle: H, text: str) -> None:
        """Make a posted message show ``text`` (which fits its room)."""

    def growing(self, handle: H) -> None:
        """``handle``'s message belongs to a reply still being written (Discord offers a
        stop button on it)."""

    def settled(self, handle: H) -> None:
        """The reply of a :meth:`growing` message is no longer written (withdraw what
        :meth:`growing` offered). Not called for a message someone deleted."""

    def typing(self) -> None:
        """Show that the mate is writing, until :meth:`typed`."""

    def typed(self) -> None:
        """Stop showing that the mate is writing (called again is harmless)."""

    def footnote(self, text: str) -> str:
        """``text`` as a small note that ends the reply, with its leading line break."""

    async def turn(self, handle: H, text: str) -> Turn:
        """The turn a posted message makes in the conversation: the mate's own, showing
        ``text``."""

    async def aclose(self) -> None:
        """Wait for what the sink runs beside the reply (the typing indicator) to end."""


@runtime_checkable
class Rewriting(Sink[H], Protocol[H]):
    """A sink that can also rewrite a reply it showed before (🔄 regenerate): find its
    messages again and delete those a shorter rewrite no longer needs."""

    async def reopen(self, message_id: int) -> tuple[H, str] | None:
        """A message the mate posted earlier here, to be edited: its handle and the part
        of the reply it shows; None when it is gone or can no longer be edited. Raises
        :class:`~loopflow.chat.streaming.DeliveryFailed` when the chat could not say."""

    async def delete(self, handle: H) -> None:
        """Delete a posted message (and forget it as the mate's); a message already
        deleted raises :class:`~loopflow.chat.streaming.MessageGone`, other failures
        :class:`~loopflow.chat.streaming.DeliveryFailed`."""


@dataclass(frozen=True)
class Outcome(Generic[H]):
    """What a reply came to.

    ``posted``: the messages showing the reply, in order, each with the part it shows
    (a deleted one is not among them); ``text``: everything the mate wrote.
    ``usage``: the provider's count, an estimate for a reply cut short, None when nothing
    was asked. ``omitted`` older turns the budget left out, and whether it ``truncated``
    the newest. ``stopped``: a stop request, a deletion or a refusal ended the
    generation. ``failure``: why the mate could not answer (a
    :class:`~loopflow.errors.ProviderError`, :class:`~loopflow.errors.EmptyReplyError`,
    or a :class:`~loopflow.errors.MateError` when its model could not be chosen);
    ``refused``: the text the chat refused; ``undelivered``: a final post that failed.
    """

    posted: tuple[tuple[H, str], ...] = ()
    text: str = ""
    usage: Usage | None = None
    omitted: int = 0
    truncated: bool = False
    stopped: bool = False
    failure: LoopflowError | None = None
    refused: TextRefused | None = None
    undelivered: DeliveryFailed | None = None

    @property
    def warnings(self) -> tuple[str, ...]:
        """Notes for people about what the budget left out
        (:func:`~loopflow.io.session.budget_warnings`)."""
        return budget_warnings(self.omitted, self.truncated)
