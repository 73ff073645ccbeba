"""What a :class:`~loopflow.chat.server.ChatServer` asks of the chat it serves.

The server takes plain values: a :class:`Place` says where a conversation happens. It
asks the chat (its :class:`Host`: the Discord cog, a test) for stored settings, for a
cold conversation's history, and for a :class:`~loopflow.chat.sink.Sink` to write each
reply into, and tells it when a reply is over.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from loopflow.chat.history import DEFAULT_CACHE_BYTES
from loopflow.chat.sink import Outcome, Sink
from loopflow.io.session import ReplyStream, Turn
from loopflow.mates import Mate
from loopflow.providers.base import Usage


@dataclass(frozen=True)
class Place:
    """Where a conversation happens: ``conversation`` is its id (a channel, thread or DM
    channel), ``guild`` the server whose mates and rules apply (for a DM, the server of
    the mate the person chose)."""

    conversation: int
    guild: int


@dataclass(frozen=True)
class Limits:
    """How much the server remembers.

    Conversations cached while their turns weigh ``cache_bytes`` in all (approximately,
    :func:`~loopflow.chat.history.turn_bytes`), each up to ``messages`` turns; the least
    recently used goes first. ``conversations``: conversations told that older messages
    were left out; ``markers``: conversations whose read markers are kept; ``people``:
    cooldown clocks and DM hints kept. Forgetting is harmless: a conversation is fetched
    again, a lost marker falls back to the chat's order, a lost clock to "may speak", a
    lost hint is given once more.
    """

    conversations: int = 1_000
    messages: int = 1_000
    markers: int = 10_000
    people: int = 10_000
    cache_bytes: int = DEFAULT_CACHE_BYTES


class Host(Protocol):
    """What the server asks of the chat it serves."""

    async def mates(self, guild: int) -> Mapping[str, Mate]:
        """The server's mates by name (their stored settings)."""

    async def server_models(self, guild: int) -> Mapping[str, str]:
        """The server's default model per provider, where it overrides the bot's."""

    async def reset_point(self, conversation: int) -> int:
        """The message id the conversation starts after (0: from its beginning)."""

    async def history(self, place: Place, after: int) -> list[Turn]:
        """The conversation's recent turns after message id ``after`` (a cold start)."""

    async def reply_chain(self, place: Place, message_id: int) -> list[Turn]:
        """The reply chain that ends with message ``message_id``, oldest first (what a
        mate read to answer it; empty when the message is gone)."""

    def sink(self, place: Place, mate: Mate, replied_to: int) -> Sink[Any] | None:
        """Where ``mate``'s reply shows (``replied_to``: the message it answers when
        someone replied to the mate, else 0); None when the place is gone."""

    async def finished(self, place: Place, mate: Mate, outcome: Outcome[Any]) -> None:
        """A reply is over (or could not start: ``outcome.failure``): count its usage,
        say what went wrong."""


class Budget(Protocol):
    """Daily token limits, as the chat keeps them (optional: a server without one asks
    nothing). ``person`` is whom a turn answers (the newest person's message it reads),
    ``message_id`` that message (0: unknown)."""

    async def allow(self, place: Place, mate: Mate, person: int, message_id: int) -> bool:
        """Whether ``mate`` may ask its provider for a reply now; when not, the budget
        says so in the chat (once, then quietly) and no request is made."""

    async def spent(self, place: Place, mate: Mate, person: int, usage: Usage) -> None:
        """A reply (finished, stopped or failed) billed ``usage``: count it."""


PlaceStream = Callable[[Place, Mate, Sequence[Turn]], Awaitable[ReplyStream]]
"""Starts a mate's reply in a place (e.g. with the memory of that conversation)."""

Chain = Callable[[], Awaitable[list[Turn]]]
"""Loads a reply chain: the messages a reply answers, oldest first."""


def cache_key(guild: int, conversation: int, mate: str) -> str:
    """The prompt cache key of ``mate``'s conversation (``"guild:conversation:mate"``,
    :attr:`Request.cache_key <loopflow.providers.base.Request.cache_key>`): the same
    prefix is sent there turn after turn."""
    return f"{guild}:{conversation}:{mate}"
