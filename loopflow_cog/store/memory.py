"""Mates' memory in Red's Config: windows and summaries, notes about people, opt-outs.

PRODUCT.md section 10. :class:`ConfigMemory` is the library's
:class:`~loopflow.chat.keeper.MemoryStore` on Config (see schema.py for the layout):

- a window per (conversation, mate) in the channel scope's ``memory`` (mate name ->
  ``WindowState.to_dict()``), so a deleted channel or thread takes it with it;
- notes in the custom group :data:`~.schema.NOTES` (guild id, mate name, person id) ->
  ``{"facts": [...]}``, oldest first;
- an opt-out in the user scope's ``memory_optout`` (global, per person).

Every turn reads its window and the notes about the people in it, and asks about the
opt-out of every speaker: what was read or written is mirrored in memory, so a turn
reads no Config once its conversation was read. The mirrors are bounded: windows and
notes by their approximate size (:data:`WINDOW_CACHE_BYTES`, :data:`NOTE_CACHE_BYTES`;
the least recently used go first and are read again when needed), opt-outs by count
(:data:`OPT_OUT_CACHE_LIMIT`). This module is the only writer of all three, and the
store clears a channel's scope under :meth:`ConfigMemory.clearing`,
so the mirrors stay exact: a read that a write or a deletion overtook, or made while a
deletion runs, is not mirrored, nor a write that a deletion overtook.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any

from redbot.core import Config

from loopflow.chat.bounded import LRUMap
from loopflow.chat.memory import WindowState

from . import schema
from .schema import NOTES

OPT_OUT_CACHE_LIMIT = 10_000  # people whose opt-out state is kept in memory (LRU)
# The windows and notes mirrored in memory, by approximate size: a summary is ~a tenth
# of a mate's budget (~6 KB at 16,000 tokens), so 16 MiB keeps ~2,500 windows, more than
# the conversations the history cache keeps warm by default; a person's notes are at
# most 20 of 200 characters.
WINDOW_CACHE_BYTES = 16 * 2**20
NOTE_CACHE_BYTES = 4 * 2**20
ENTRY_BYTES = 400  # an entry's own weight besides its text: key, dict or tuple, ids

WindowKey = tuple[int, str]  # (conversation, mate)
NoteKey = tuple[int, str, int]  # (guild, mate, person)


class ConfigMemory:
    """Windows, notes and opt-outs on Config; a :class:`~loopflow.chat.keeper.MemoryStore`."""

    def __init__(
        self,
        config: Config,
        *,
        window_bytes: int = WINDOW_CACHE_BYTES,
        note_bytes: int = NOTE_CACHE_BYTES,
    ) -> None:
        self.config = config
        self._opted_out: LRUMap[int, bool] = LRUMap(OPT_OUT_CACHE_LIMIT)
        # What Config holds, as stored (None: nothing stored): to_dict() of a window,
        # the facts of a person's notes.
        self._windows: LRUMap[WindowKey, dict[str, Any] | None] = LRUMap(
            window_bytes, weigh=_window_bytes
        )
        self._notes: LRUMap[NoteKey, tuple[str, ...]] = LRUMap(note_bytes, weigh=_note_bytes)
        # Bumped by every write: a read that a write overtook is not mirrored.
        self._writes = 0
        # Deletions under way (:meth:`_deleting`): while one runs, nothing read is
        # mirrored (a read may find an entry it has not deleted yet).
        self._deletions = 0
        # Deletions begun so far: a write that one overtook is not mirrored either (the
        # deletion landed after it in Config).
        self._deletions_begun = 0

    def _unchanged_since(self, writes: int) -> bool:
        """Whether what a read that began at ``writes`` found may be mirrored: nothing
        was written since, and no deletion is under way."""
        return writes == self._writes and not self._deletions

    def _written(self, deletions_begun: int) -> bool:
        """Whether a write that began when ``deletions_begun`` deletions had begun may
        mirror what it wrote: no deletion ran meanwhile, nor runs now."""
        self._writes += 1
        return deletions_begun == self._deletions_begun and not self._deletions

    @property
    def mirrored(self) -> dict[str, int]:
        """How many windows and note lists the mirrors hold, and what they weigh
        (approximate bytes; tests, diagnostics)."""
        return {
            "windows": len(self._windows),
            "window_bytes": self._windows.weight,
            "notes": len(self._notes),
            "note_bytes": self._notes.weight,
        }

    # --- windows -----------------------------------------------------------------------

    async def load_window(self, conversation: int, mate: str) -> WindowState:
        """``mate``'s state in ``conversation`` (a new :class:`WindowState` if none)."""
        key = (conversation, mate)
        if key in self._windows:
            data = self._windows[key]
        else:
            writes = self._writes
            group = schema.group(self.config.channel_from_id(conversation), "memory")
            stored = await group.get_raw(mate, default=None)
            data = stored if isinstance(stored, dict) else None
            if self._unchanged_since(writes):
                self._windows[key] = data
        # A new state each time: the caller changes it, the mirror stays as stored.
        return WindowState.from_dict(data) if data is not None else WindowState()

    async def save_window(self, conversation: int, mate: str, state: WindowState) -> None:
        """Keep ``state`` as ``state.to_dict()``."""
        data = state.to_dict()
        self._writes += 1
        deletions = self._deletions_begun
        self._windows.pop((conversation, mate), None)  # a write that fails leaves no guess
        await schema.group(self.config.channel_from_id(conversation), "memory").set_raw(
            mate, value=data
        )
        if self._written(deletions):
            self._windows[(conversation, mate)] = data

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
            key = (guild, mate, person)
            if key in self._notes:
                kept = self._notes[key]
            else:
                writes = self._writes
                stored = await self.config.custom(NOTES, str(guild), mate, str(person)).facts()
                kept = tuple(str(fact) for fact in stored or ())
                if self._unchanged_since(writes):
                    self._notes[key] = kept
            if kept:
                found[person] = list(kept)
        return found

    async def save_notes(self, guild: int, mate: str, person: int, facts: Sequence[str]) -> None:
        """Keep ``person``'s notes (oldest first); an empty list deletes them."""
        key = (guild, mate, person)
        kept = tuple(str(fact) for fact in facts)
        self._writes += 1
        deletions = self._deletions_begun
        self._notes.pop(key, None)  # a write that fails leaves no guess
        group = self.config.custom(NOTES, str(guild), mate, str(person))
        if kept:
            await group.facts.set(list(kept))
        else:
            await group.clear()
        if self._written(deletions):
            self._notes[key] = kept

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
            writes = self._writes
            cached = bool(await self.config.user_from_id(person).memory_optout())
            if self._unchanged_since(writes):
                self._opted_out[person] = cached
        return cached

    async def opted_out(self, people: Iterable[int]) -> frozenset[int]:
        """Those of ``people`` who opted out."""
        unique = people if isinstance(people, (set, frozenset)) else set(people)
        return frozenset([pid for pid in unique if await self.is_opted_out(pid)])

    async def set_opted_out(self, person: int, opted_out: bool) -> None:
        """Record ``person``'s choice (opting in deletes the record)."""
        group = self.config.user_from_id(person).memory_optout
        self._writes += 1
        deletions = self._deletions_begun
        self._opted_out.pop(person, None)
        if opted_out:
            await group.set(True)
        else:
            await group.clear()
        if self._written(deletions):
            self._opted_out[person] = opted_out

    # --- mates that are gone ------------------------------------------------------------

    async def forget_mate(self, guild: int, mate: str, conversations: Collection[int]) -> None:
        """A mate was deleted: its notes in ``guild`` go, and its windows in those of
        ``conversations`` (the server's channels and threads) that hold one, so a new mate
        of that name starts with no memory."""
        wanted = {str(c) for c in conversations}
        with self._deleting(
            notes=lambda key: key[0] == guild and key[1] == mate,
            windows=lambda key: str(key[0]) in wanted and key[1] == mate,
        ):
            await self.config.custom(NOTES, str(guild), mate).clear()
            for channel_id, data in (await self.config.all_channels()).items():
                if str(channel_id) in wanted and mate in (data.get("memory") or {}):
                    await schema.group(
                        self.config.channel_from_id(int(channel_id)), "memory"
                    ).clear_raw(mate)

    def clearing(self, conversations: Collection[int]) -> contextlib.AbstractContextManager[None]:
        """Hold while the store clears these channels' scope (a channel or thread
        deleted, a server left): their windows are gone from the mirror, and no read
        made meanwhile is mirrored::

            with memory.clearing([channel_id]):
                await config.channel_from_id(channel_id).clear()
        """
        gone = set(conversations)
        return self._deleting(windows=lambda key: key[0] in gone)

    @contextlib.contextmanager
    def _deleting(
        self,
        *,
        windows: Callable[[WindowKey], bool] | None = None,
        notes: Callable[[NoteKey], bool] | None = None,
    ) -> Iterator[None]:
        """Around a deletion in Config: the mirrored entries it deletes go first, and
        no read that overlaps it is mirrored (it may have read what is being deleted:
        a read made between two of its writes finds the entries not deleted yet)."""
        self._writes += 1
        self._deletions += 1
        self._deletions_begun += 1
        if windows is not None:
            self._windows.discard_where(windows)
        if notes is not None:
            self._notes.discard_where(notes)
        try:
            yield
        finally:
            self._deletions -= 1
            self._writes += 1

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
        with self._deleting(notes=lambda key: key[2] == person):
            stored: dict[str, Any] = await self.config.custom(NOTES).all()
            for guild_id, mates in stored.items():
                for mate, people in mates.items():
                    if str(person) in people:
                        await self.config.custom(NOTES, guild_id, mate, str(person)).clear()
        self._opted_out.pop(person, None)
        with self._deleting():
            await self.config.user_from_id(person).memory_optout.clear()

    async def person_data(self, person: int) -> dict[str, Any]:
        """What is kept about ``person`` here: their notes, by ``"guild id/mate"`` (their
        opt-out is in the user scope, which the store exports whole). Summaries are of
        conversations, not of one person: not included."""
        return {"memory_notes": await self.notes_about(person)}


def _window_bytes(key: WindowKey, data: dict[str, Any] | None) -> int:
    """What a mirrored window weighs, approximately: its summary, its people, the rest."""
    if data is None:
        return ENTRY_BYTES
    summary, people = data.get("summary"), data.get("people")
    return (
        ENTRY_BYTES
        + (len(summary) if isinstance(summary, str) else 0)
        + 40 * (len(people) if isinstance(people, list) else 0)
    )


def _note_bytes(key: NoteKey, facts: tuple[str, ...]) -> int:
    """What a person's mirrored notes weigh, approximately."""
    return ENTRY_BYTES + sum(60 + len(fact) for fact in facts)
