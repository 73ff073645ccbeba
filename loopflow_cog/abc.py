"""The one typed base of the cog's command mixins (Red's mod cog pattern).

Each mixin (:class:`~.commands.MateCommands`, :class:`~.chat_commands.ChatCommands`,
:class:`~.settings_group.SettingsGroup` (``[p]mateset``),
:class:`~.settings_commands.SettingsCommands`,
:class:`~.discussion_commands.DiscussionCommands`) inherits :class:`MixinMeta`, which
declares once what the cog provides them; the cog combines the mixins with
``metaclass=CompositeMetaClass``, since discord.py's ``CogMeta`` and ``ABCMeta`` must
both apply.
"""

from __future__ import annotations

from abc import ABC, ABCMeta
from typing import TYPE_CHECKING

from discord.ext.commands import CogMeta

if TYPE_CHECKING:
    from redbot.core.bot import Red

    from loopflow.io.session import Session

    from .listeners import Conversations
    from .remembering import Remembering
    from .store import Store


class MixinMeta(ABC):
    """What every command mixin may use: the bot, the store (the only door to Config),
    the session (models and providers), the conversations (the chat server) and the
    mates' memory (remembering)."""

    bot: Red
    store: Store
    session: Session
    conversations: Conversations
    remembering: Remembering


class CompositeMetaClass(CogMeta, ABCMeta):
    """Lets discord.py's cog metaclass and :class:`ABCMeta` make one class."""
