"""``[p]mate discuss`` and ``[p]mate stop`` (PRODUCT.md section 11): mates among themselves.

The engine runs the discussion (:meth:`~loopflow.chat.server.ChatServer.discuss`); this
module parses the request, checks who may start and stop one, and answers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import discord
from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import humanize_list

from loopflow.chat.discussion import DEFAULT_ROUNDS, MAX_MATES
from loopflow.io.discord import scrub_mentions
from loopflow.io.session import Turn
from loopflow.mates import Mate

from .abc import MixinMeta
from .answering import STOP_EMOJI
from .answers import answer
from .commands import MateCommands
from .places import mates_may_post
from .trust import is_admin

_ = Translator("Loopflow", __file__)

_TOKEN = re.compile(r"\S+")
_PUNCTUATION = ",;:"


class DiscussionInputError(ValueError):
    """A ``[p]mate discuss`` request that cannot start; ``str()`` says why, for people."""


@dataclass(frozen=True)
class DiscussionRequest:
    """What ``[p]mate discuss`` asked for: ``rounds`` (None: the default), the ``mates``
    in the order named, and the ``topic``."""

    rounds: int | None
    mates: tuple[Mate, ...]
    topic: str


def parse_discussion(text: str, mates: Mapping[str, Mate]) -> DiscussionRequest:
    """Read ``[rounds] <mate> <mate> [more mates...] <topic>`` against a server's
    ``mates`` (by name).

    A leading whole number is the rounds (unless it names a mate and reading it as
    rounds leaves fewer than two mates). Then each word that names a mate not named yet
    (case-insensitive, a leading ``@`` and a trailing ``,;:`` ignored) is a mate; the
    first word that names none (or one named already) starts the topic, which keeps its
    spacing. Raises :class:`DiscussionInputError` for fewer than two mates, more than
    :data:`MAX_MATES`, or no topic.
    """
    tokens = list(_TOKEN.finditer(text))
    if tokens and tokens[0].group().isdecimal():
        as_rounds = _read_mates(text, tokens, 1, mates)
        if len(as_rounds[0]) >= 2 or _mate_of(tokens[0].group(), mates) is None:
            rounds: int | None = int(tokens[0].group()[:6])
            named, topic = as_rounds
            return _checked(rounds, named, topic, tokens, 1)
    named, topic = _read_mates(text, tokens, 0, mates)
    return _checked(None, named, topic, tokens, 0)


def _read_mates(
    text: str, tokens: list[re.Match[str]], start: int, mates: Mapping[str, Mate]
) -> tuple[list[Mate], str]:
    named: list[Mate] = []
    index = start
    while index < len(tokens):
        mate = _mate_of(tokens[index].group(), mates)
        if mate is None or mate in named:
            break
        named.append(mate)
        index += 1
    topic = text[tokens[index].start() :].strip() if index < len(tokens) else ""
    return named, topic


def _checked(
    rounds: int | None,
    named: list[Mate],
    topic: str,
    tokens: list[re.Match[str]],
    start: int,
) -> DiscussionRequest:
    if len(named) < 2:
        after = start + len(named)
        if after < len(tokens):
            word = tokens[after].group().strip(_PUNCTUATION)[:40]
            if named and _mate_of(word, {m.name: m for m in named}) is not None:
                raise DiscussionInputError(
                    _(
                        "`{word}` is named twice: name at least two different mates, then "
                        "the topic."
                    ).format(word=word)
                )
            raise DiscussionInputError(
                _("`{word}` is not a mate here: name at least two mates, then the topic.").format(
                    word=word
                )
            )
        raise DiscussionInputError(_("Name at least two mates, then the topic."))
    if len(named) > MAX_MATES:
        raise DiscussionInputError(
            _("A discussion has at most {count} mates.").format(count=MAX_MATES)
        )
    if not topic:
        raise DiscussionInputError(_("Give the topic after the mates."))
    return DiscussionRequest(rounds, tuple(named), topic)


def _mate_of(word: str, mates: Mapping[str, Mate]) -> Mate | None:
    return mates.get(word.lstrip("@").rstrip(_PUNCTUATION).lower())


class DiscussionCommands(MixinMeta):
    """``[p]mate discuss`` and ``[p]mate stop``; mixed into the cog."""

    @MateCommands.mate.command(name="discuss")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_messages=True)
    async def mate_discuss(self, ctx: commands.GuildContext, *, request: str) -> None:
        """Let mates discuss a topic here: `[rounds] <mate> <mate> [more mates...] <topic>`.

        Each round every mate speaks once, in the order named (3 rounds unless you say;
        `[p]mateset discussmax` caps them). Your messages meanwhile are read by the next
        speaker. ⏹️ on any of their replies or `[p]mate stop` ends it.
        """
        guild_id = ctx.guild.id
        channel = ctx.channel
        # A stage's chat is no place of the mates' (nor bindable): the host finds none there.
        # In a place where the bot may not post, Red runs no prefix command: a slash one.
        if isinstance(channel, discord.StageChannel) or not mates_may_post(channel):
            await answer(ctx, _("I can't post in this channel, so no mate can discuss here."))
            return
        try:
            wanted = parse_discussion(request, await self.store.mates(guild_id))
        except DiscussionInputError as exc:
            await answer(ctx, str(exc))
            return
        most = await self.store.discuss_max(guild_id)
        rounds = min(DEFAULT_ROUNDS, most) if wanted.rounds is None else wanted.rounds
        if not 1 <= rounds <= most:
            await answer(
                ctx,
                _(
                    "A discussion here has 1 to {most} rounds; an admin can change the "
                    "most with `{p}mateset discussmax`."
                ).format(most=most, p=ctx.clean_prefix),
            )
            return
        if await self.store.memory.is_opted_out(ctx.author.id):
            await answer(
                ctx,
                _("You opted out, so your words never reach a mate: `{p}mate optin` first.").format(
                    p=ctx.clean_prefix
                ),
            )
            return
        conversations = self.conversations
        place = conversations.host.place(channel, guild_id)
        topic = Turn(
            ctx.author.id,
            ctx.author.display_name,
            scrub_mentions(wanted.topic),
            ctx.message.id,
            time=ctx.message.created_at,
        )
        if conversations.server.discussion(channel.id) is not None:
            text = _("A discussion is already running here: `{p}mate stop` ends it.")
            await answer(ctx, text.format(p=ctx.clean_prefix))
            return
        started = conversations.server.discuss(place, wanted.mates, rounds, topic)
        if started is None:
            await answer(ctx, _("Too many discussions are running right now; try again later."))
            return
        names = humanize_list([f"**{mate.display_name}**" for mate in wanted.mates])
        await answer(
            ctx,
            _(
                "{names} discuss for {rounds} round(s). {stop} on any of their replies or "
                "`{p}mate stop` ends it."
            ).format(names=names, rounds=rounds, stop=STOP_EMOJI, p=ctx.clean_prefix),
        )

    @MateCommands.mate.command(name="stop")
    @commands.guild_only()
    async def mate_stop(self, ctx: commands.GuildContext) -> None:
        """End the discussion in this channel after the reply being written (whoever
        started it, or Manage Messages)."""
        server = self.conversations.server
        discussion = server.discussion(ctx.channel.id)
        if discussion is None:
            await answer(ctx, _("No discussion is running here."), ephemeral=True)
            return
        if not await _may_stop(ctx, discussion.starter):
            await answer(
                ctx,
                _(
                    "Only whoever started this discussion, or someone with Manage Messages "
                    "here, can stop it."
                ),
                ephemeral=True,
            )
            return
        server.stop_discussion(ctx.channel.id)
        await answer(ctx, _("The discussion ends after the reply being written."))


async def _may_stop(ctx: commands.GuildContext, starter: int) -> bool:
    """The person who started the discussion, Manage Messages where it runs, or admins."""
    member = ctx.author
    if member.id == starter or await is_admin(ctx):
        return True
    if not isinstance(member, discord.Member):
        return False
    return ctx.channel.permissions_for(member).manage_messages
