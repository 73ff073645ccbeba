"""Mates' memory in Red's Config: windows and summaries, notes about people, opt-outs.

PRODUCT.md section 10. :class:`ConfigMemory` is the library's
:class:`~loopflow.chat.keeper.MemoryStore` on Config (see schema.py for the layout):

- a window per (conversation, mate) in the channel scope's ``memory`` (mate name ->
  ``WindowState.to_dict()``), so a deleted channel or thread takes it with it;
- notes in the custom group :data:`~.schema.NOTES` (guild id, mate name, person id) ->
  ``{"facts": [...]}``, oldest first;
- an opt-out in the user scope's ``memory_optout`` (global, per person).

Windows and notes are read from Config on every turn (one read each, cheap next to a
provider's request); opt-outs, asked about for every speaker of every turn, are also
kept in a bounded map (:data:`OPT_OUT_CACHE_LIMIT`). This module is the only writer of
all three, so that map stays exact.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from redbot.core import Config

from loopflow.chat.bounded import LRUMap
from loopflow.chat.memory import WindowState

from . import schema
from .schema import NOTES

OPT_OUT_CACHE_LIMIT = 10_000  # people whose opt-out state is kept in memory (LRU)


class ConfigMemory:
    """Windows, notes and opt-outs on Config; a :class:`~loopflow.chat.keeper.MemoryStore`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._opted_out: LRUMap[int, bool] = LRUMap(OPT_OUT_CACHE_LIMIT)

    # --- windows -----------------------------------------------------------------------

    async def load_window(self, conversation: int, mate: str) -> WindowState:
        """``mate``'s state in ``conversation`` (a new :class:`WindowState` if none)."""
        group = schema.group(self.config.channel_from_id(conversation), "memory")
        data = await group.get_raw(mate, default=None)
        return WindowState.from_dict(data) if isinstance(data, dict) else WindowState()

    async def save_window(self, conversation: int, mate: str, state: WindowState) -> None:
        """Keep ``state`` as ``state.to_dict()``."""
        await schema.group(self.config.channel_from_id(conversation), "memory").set_raw(
            mate, value=state.to_dict()
        )

    async def windows(self, conversation: int) -> dict[str, WindowState]:
        """Every mate's state in ``conversation``, by mate name."""
        stored = await self.config.channel_from_id(conversation).memory()
        return {name: WindowState.from_dict(data) for name, data in stored.items()}

    # --- notes -------------------------------------------------------------------------

    async def load_notes(
        self, guild: int, mate: str, people: Collection[int]
    ) -> dict[int, list[str]]:
        """The notes ``mate`` keeps in ``guild`` about each of ``people`` who has some."""
        found: dict[int, list[str]] = {}
        for person in people:
            facts = await self.config.custom(NOTES, str(guild), mate, str(person)).facts()
            if facts:
                found[person] = [str(fact) for fact in facts]
        return found

    async def save_notes(self, guild: int, mate: str, person: int, facts: Sequence[str]) -> None:
        """Keep ``person``'s notes (oldest first); an empty list deletes them."""
        group = self.config.custom(NOTES, str(guild), mate, str(person))
        if facts:
            await group.facts.set(list(facts))
        else:
            await group.clear()

    async def notes_about(self, person: int, guild: int | None = None) -> dict[str, list[str]]:
        """``person``'s notes by mate name in ``guild``; with no guild, by
        ``"guild id/mate"`` across every server (the data export)."""
        found: dict[str, list[str]] = {}
        for guild_id, mate, pid, facts in await self._all_notes(guild):
            if pid == person:
                found[mate if guild is not None else f"{guild_id}/{mate}"] = facts
        return found

    async def _all_notes(self, guild: int | None = None) -> list[tuple[int, str, int, list[str]]]:
        """Every stored note list (of ``guild``, or of every server) as ``(guild, mate,
        person, facts)``."""
        if guild is None:
            stored: dict[str, Any] = await self.config.custom(NOTES).all()
        else:
            stored = {str(guild): await self.config.custom(NOTES, str(guild)).all()}
        rows = []
        for guild_id, mates in stored.items():
            for mate, people in mates.items():
                for pid, data in people.items():
                    facts = data.get("facts") if isinstance(data, dict) else None
                    if facts and str(pid).isdigit() and str(guild_id).isdigit():
                        rows.append((int(guild_id), mate, int(pid), [str(f) for f in facts]))
        return rows

    async def noted_keys(self, person: int, guild: int | None = None) -> list[tuple[int, str]]:
        """The ``(guild, mate)`` pairs that keep notes about ``person`` (in ``guild``, or
        in every server)."""
        return [(g, m) for g, m, pid, _ in await self._all_notes(guild) if pid == person]

    # --- opt-outs ----------------------------------------------------------------------

    async def is_opted_out(self, person: int) -> bool:
        """Whether ``person`` opted out of being read and remembered by mates."""
        cached = self._opted_out.get(person)
        if cached is None:
            cached = bool(await self.config.user_from_id(person).memory_optout())
            self._opted_out[person] = cached
        return cached

    async def opted_out(self, people: Iterable[int]) -> frozenset[int]:
        """Those of ``people`` who opted out."""
        return frozenset([pid for pid in set(people) if await self.is_opted_out(pid)])

    async def set_opted_out(self, person: int, opted_out: bool) -> None:
        """Record ``person``'s choice (opting in deletes the record)."""
        group = self.config.user_from_id(person).memory_optout
        if opted_out:
            await group.set(True)
        else:
            await group.clear()
        self._opted_out[person] = opted_out

    # --- mates that are gone ------------------------------------------------------------

    async def forget_mate(self, guild: int, mate: str, conversations: Collection[int]) -> None:
        """A mate was deleted: its notes in ``guild`` go, and its windows in those of
        ``conversations`` (the server's channels and threads) that hold one, so a new mate
        of that name starts with no memory."""
        await self.config.custom(NOTES, str(guild), mate).clear()
        wanted = {str(c) for c in conversations}
        for channel_id, data in (await self.config.all_channels()).items():
            if str(channel_id) in wanted and mate in (data.get("memory") or {}):
                await schema.group(
                    self.config.channel_from_id(int(channel_id)), "memory"
                ).clear_raw(mate)

    # --- end-user data -----------------------------------------------------------------

    async def windows_with(self, person: int) -> list[tuple[int, str]]:
        """The (conversation, mate) windows whose summary folded ``person``'s messages
        (:meth:`~loopflow.chat.keeper.MemoryStore.windows_with`)."""
        return [
            (int(channel_id), mate)
            for channel_id, data in (await self.config.all_channels()).items()
            for mate, window in (data.get("memory") or {}).items()
            if person in WindowState.from_dict(window).people
        ]

    async def delete_person(self, person: int) -> None:
        """Forget ``person``: their notes and their opt-out record. The summaries that
        folded their messages are cleared by the keeper, under their windows' locks
        (:meth:`~loopflow.chat.keeper.MemoryKeeper.erasing`)."""
        stored: dict[str, Any] = await self.config.custom(NOTES).all()
        for guild_id, mates in stored.items():
            for mate, people in mates.items():
                if str(person) in people:
                    await self.config.custom(NOTES, guild_id, mate, str(person)).clear()
        await self.config.user_from_id(person).memory_optout.clear()
        self._opted_out.pop(person, None)

    async def person_data(self, person: int) -> dict[str, Any]:
        """What is kept about ``person`` here: their notes, by ``"guild id/mate"`` (their
        opt-out is in the user scope, which the store exports whole). Summaries are of
        conversations, not of one person: not included."""
        return {"memory_notes": await self.notes_about(person)}
