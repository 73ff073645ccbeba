"""Memory at work: a mate's turn built with its memory, and the folds that run beside it.

A host (the cog, the terminal) keeps the values of :mod:`loopflow.chat.memory` in a
:class:`MemoryStore` and calls a :class:`MemoryKeeper`::

    keeper = MemoryKeeper(session, store)
    stream = await keeper.stream(mate, turns, guild=g, conversation=c, opted_out=ids)
    async for delta in stream: ...          # the reply, as from Session.stream
    await keeper.reset(c, mate.name)        # [p]mate reset
    await keeper.remember(g, mate.name, person, "has a cat called Pixel")

Fold ahead, switch once: when a request's window is nearly full (``Prompt.next_start``),
the keeper saves the planned start and starts a fold task for that (conversation, mate)
that folds the turns before it; the reply's request is already under way and never
waits for it, and the requests built meanwhile keep the window and summary they had
(their prefix stays byte-identical). When the fold lands the window's start moves to
the planned one with the new summary (:meth:`WindowState.absorb`), so the next request
changes its prefix once, and no turn is in neither the window nor the summary.

When a request's window jumps by itself (it filled up before the fold landed), the
keeper saves the new start and folds what left it, after the fold under way; that fold
ahead is then held back and saved with the jump's fold, so the summary the requests
carry changes once for both (as it did before the fold ahead), not twice. A fold
that fails leaves the state as it was, its plan kept, and no fold ahead is tried again
(else a provider that is down would be asked every turn): the next jump folds those
turns again, with everything that left the window since. A fold ahead cut short by a
restart left its plan in the store: the first turn after it folds up to it again. One
fold runs per (conversation, mate) at a time (a jump meanwhile is taken up when it
ends), and at most ``max_folds`` at once.

A data deletion or an opt-out (:meth:`MemoryKeeper.erasing`) drops what folds and note
saves under way hold of the person: :class:`~loopflow.chat.erasures.Erasures` counts
the erasures and serialises the changes about each person.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, replace

from loopflow.chat.bounded import KeyedLocks, LRUMap
from loopflow.chat.erasures import Erasures
from loopflow.chat.folding import Fold, FoldJob, fold, plan_fold
from loopflow.chat.host import Place, cache_key
from loopflow.chat.memory import WindowState
from loopflow.chat.memory_store import InMemoryStore as InMemoryStore
from loopflow.chat.memory_store import MemoryStore, WindowKey
from loopflow.chat.notes import add_note, clean_note
from loopflow.errors import LoopflowError
from loopflow.io.session import Prompt, ReplyStream, Session, Turn
from loopflow.mates import Mate
from loopflow.providers.base import Usage

UsageHook = Callable[[Place, Mate, str, Usage], Awaitable[None]]
"""Told what each fold request billed: ``(place, mate, model, usage)``, the place being the
conversation whose messages were folded (and its server)."""

log = logging.getLogger("loopflow.memory")


@dataclass(frozen=True)
class _Jump:
    """A window move to fold after: the turns as the build saw them, where the window
    starts (``start``), and for a fold ahead the start planned (``ahead``, else 0)."""

    mate: Mate
    turns: Sequence[Turn]
    guild: int
    opted_out: frozenset[int]
    start: int
    epoch: int
    ahead: int = 0


@dataclass(frozen=True)
class _Landed:
    """A fold that landed: its job, its result, and each folded person's erasure count
    when it read their messages."""

    job: FoldJob
    fold: Fold
    seen: dict[int, int | None]


class MemoryKeeper:
    """Builds turns with memory and folds what leaves the window, beside the turns."""

    def __init__(
        self,
        session: Session,
        store: MemoryStore,
        *,
        max_folds: int = 64,
        on_usage: UsageHook | None = None,
    ) -> None:
        self.session = session
        self.on_usage = on_usage
        self.store = store
        self.max_folds = max_folds
        self._folds: dict[WindowKey, asyncio.Task[None]] = {}
        self._jumps: dict[WindowKey, _Jump] = {}  # the newest jump per running fold
        # People deleted while a fold task of that window ran: left out of what it plans,
        # and a fold already holding them is dropped when it lands.
        self._dropped: dict[WindowKey, set[int]] = {}
        self._closed: set[WindowKey] = set()  # running folds of a conversation now gone
        # Windows whose fold failed since their last jump: no fold ahead until the next
        # jump retries it (else a provider down would be asked again every turn). Not
        # kept across a restart: there, a plan left pending is folded at the next turn.
        self._failed: LRUMap[WindowKey, bool] = LRUMap(1_000)
        # Windows by (conversation, mate), notes by (guild, mate, person).
        self._locks = KeyedLocks()
        # How many times each person was deleted: a note being added when its person is
        # deleted is not saved, nor a fold that read their messages before.
        self._erasures = Erasures(self._locks)

    async def stream(
        self,
        mate: Mate,
        turns: Sequence[Turn],
        *,
        guild: int,
        conversation: int,
        opted_out: Collection[int] = (),
        stream: bool = True,
    ) -> ReplyStream:
        """``mate``'s reply to ``turns`` (oldest first, since the last reset, message ids
        growing) with its memory of ``conversation`` in ``guild``: a
        :class:`~loopflow.io.session.ReplyStream` to iterate. ``opted_out`` people's turns
        are left out. Raises what :meth:`Session.stream` raises, while iterating."""
        state = await self.store.load_window(conversation, mate.name)
        key = (conversation, mate.name)
        pending = self._jumps.get(key)
        if pending is not None and pending.epoch == state.epoch:
            state.move_to(pending.start)  # a jump whose fold task has not saved it yet
            state.plan(pending.ahead)
        people = window_people(state, turns, opted_out)
        notes = await self.store.load_notes(guild, mate.name, people) if people else {}
        jump = _Jump(mate, turns, guild, frozenset(opted_out), 0, state.epoch)

        def on_prompt(prompt: Prompt) -> None:
            if prompt.jumped:
                moved = replace(jump, start=prompt.start, turns=tuple(turns))
                self._failed.pop(key, None)  # this jump's fold retries what failed
                self._jumped(key, moved)
            elif prompt.next_start and self._may_fold_ahead(key, state, prompt):
                ahead = replace(
                    jump, start=prompt.start, ahead=prompt.next_start, turns=tuple(turns)
                )
                self._jumped(key, ahead)

        recall = state.recall(notes, opted_out)
        cache = cache_key(guild, conversation, mate.name)
        return self.session.stream(
            mate, turns, stream=stream, recall=recall, on_prompt=on_prompt, cache_key=cache
        )

    def _may_fold_ahead(self, key: WindowKey, state: WindowState, prompt: Prompt) -> bool:
        """Whether ``prompt``'s planned start starts a fold ahead: it is ahead of the
        window, no fold of this window runs or waits, and none failed since the last
        jump. A plan still pending (its fold cut short by a restart, or dropped by a
        deletion) is folded as it was planned (see :meth:`WindowState.plan`)."""
        busy = key in self._jumps or key in self._folds or key in self._failed
        return not busy and prompt.next_start > state.start

    async def reset(self, conversation: int, mate: str) -> None:
        """The conversation starts over for ``mate``: no window start and no summary (a
        fold under way is dropped when it lands); notes stay."""
        self._failed.pop((conversation, mate), None)
        async with self._locks.hold((conversation, mate)):
            state = await self.store.load_window(conversation, mate)
            state.reset()
            await self.store.save_window(conversation, mate, state)

    async def remember(self, guild: int, mate: str, person: int, fact: str) -> bool:
        """Add ``fact`` to ``mate``'s notes about ``person`` (as a fold would); False when
        the fact is empty, or ``person`` was deleted (:meth:`forget_person`) meanwhile:
        nothing changes."""
        return await self._remember(guild, mate, person, fact, self._erasures.count(person))

    async def _remember(
        self, guild: int, mate: str, person: int, fact: str, erasures: int | None
    ) -> bool:
        """:meth:`remember`, unless ``person`` was deleted after ``erasures`` was read."""
        if not clean_note(fact):
            return False
        async with self._erasures.hold(person):
            if self._erasures.count(person) != erasures:
                return False  # read before a deletion: saving would bring it back
            notes = await self.store.load_notes(guild, mate, [person])
            facts = add_note(notes.get(person, []), fact)
            await self.store.save_notes(guild, mate, person, facts)
        return True

    async def forget(self, guild: int, mate: str, person: int) -> bool:
        """Delete ``mate``'s notes about ``person`` in ``guild``; False if there were none."""
        async with self._erasures.hold(person):
            notes = await self.store.load_notes(guild, mate, [person])
            await self.store.save_notes(guild, mate, person, [])
        return bool(notes.get(person))

    @contextlib.asynccontextmanager
    async def erasing(self, person: int, *, summaries: bool = True) -> AsyncIterator[None]:
        """Hold this while the host deletes what is stored about ``person`` (a data
        deletion, an opt-out): folds under way forget them (:meth:`forget_person`), no
        note about them is saved meanwhile, nor after by a save that read before; then,
        with ``summaries``, every summary that folded their messages is cleared, each
        under its window's lock so that no fold landing meanwhile writes it back::

            async with keeper.erasing(person_id):
                await host_store.delete_the_rest(person_id)
        """
        self.forget_person(person)
        async with self._erasures.hold(person):
            yield
            if summaries:
                for key in await self.store.windows_with(person):
                    async with self._locks.hold(key):
                        state = await self.store.load_window(*key)
                        if state.forget_person(person):
                            await self.store.save_window(*key, state)

    def forget_person(self, person: int) -> None:
        """Keep folds under way from remembering ``person`` (a data deletion, an
        opt-out): a fold holding their messages is dropped when it lands, and waiting
        folds skip them. The host deletes what is stored (notes, and the summaries whose
        :attr:`WindowState.people` hold them: :meth:`WindowState.forget_person`); a note
        about them being saved now is not."""
        self._erasures.erase(person)
        for key in self._folds:
            self._dropped.setdefault(key, set()).add(person)
        for key, jump in self._jumps.items():
            self._jumps[key] = replace(jump, opted_out=jump.opted_out | {person})

    def close_conversation(self, conversation: int) -> None:
        """``conversation`` is gone (a deleted channel or thread, a server left): folds of
        it under way are dropped when they land, waiting ones never start, so nothing of
        it is saved again after the host deleted what was stored."""
        self._close(lambda key: key[0] == conversation)

    def close_mate(self, mate: str, conversations: Collection[int]) -> None:
        """``mate`` was deleted: its folds in ``conversations`` (its server's channels and
        threads) under way are dropped when they land, waiting ones never start, so a new
        mate of that name finds no window saved after the host deleted them."""
        places = set(conversations)
        self._close(lambda key: key[1] == mate and key[0] in places)

    def _close(self, gone: Callable[[WindowKey], bool]) -> None:
        """The windows ``gone`` picks are deleted by the host: their folds save nothing."""
        self._closed.update(key for key in self._folds if gone(key))
        self._failed.discard_where(gone)
        for key in [key for key in self._jumps if gone(key)]:
            del self._jumps[key]

    async def idle(self) -> None:
        """Wait until no fold runs (tests, and the terminal before it exits)."""
        while self._folds:
            await asyncio.gather(*self._folds.values(), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel the folds under way (what they fold is folded at a later jump)."""
        for task in self._folds.values():
            task.cancel()
        await asyncio.gather(*self._folds.values(), return_exceptions=True)

    def _jumped(self, key: WindowKey, jump: _Jump) -> None:
        self._jumps[key] = jump
        if key in self._folds:
            return  # the fold under way takes this jump up when it ends
        if len(self._folds) >= self.max_folds:
            del self._jumps[key]  # its turns are folded at the next jump
            log.warning("Too many folds under way; %s's memory of %s waits.", key[1], key[0])
            return
        task = asyncio.create_task(self._fold_jumps(key))
        self._folds[key] = task

    async def _fold_jumps(self, key: WindowKey) -> None:
        landed: list[_Landed] = []  # folds held back for the jump queued after them
        try:
            while key not in self._closed and (jump := self._jumps.get(key)) is not None:
                await self._record_jump(key, jump)
                if self._jumps.get(key) is jump:
                    del self._jumps[key]  # saved: builds read the start from the store now
                landed = await self._fold_jump(key, jump, landed)
        except Exception:  # a fold never takes a turn down; say what went wrong
            self._failed[key] = True
            log.exception("Folding %s's memory of %s failed.", key[1], key[0])
        finally:
            del self._folds[key]
            self._dropped.pop(key, None)
            self._closed.discard(key)

    async def _record_jump(self, key: WindowKey, jump: _Jump) -> None:
        """Save the window's new start, or the start planned for a fold ahead (unless the
        conversation was reset or closed since)."""
        conversation, name = key
        async with self._locks.hold(key):
            if key in self._closed:
                return
            state = await self.store.load_window(conversation, name)
            if state.epoch != jump.epoch:
                return
            moved = state.move_to(jump.start)
            if moved | state.plan(jump.ahead):
                await self.store.save_window(conversation, name, state)

    async def _fold_jump(self, key: WindowKey, jump: _Jump, landed: list[_Landed]) -> list[_Landed]:
        """Fold everything that left the window, one request after another, after the
        folds that ``landed`` unsaved. A fold is saved as it lands, unless the window
        has jumped past it meanwhile (a fold ahead that was too slow): then it is held
        back and returned, to be saved with the fold of that jump, so the summary the
        requests carry changes once for both."""
        conversation, name = key
        model = self.session.model_for(jump.mate)
        counter = self.session.counters.for_model(jump.mate.provider, model)
        while True:
            async with self._locks.hold(key):
                state = await self.store.load_window(conversation, name)
                for held in landed:  # plan from what landed
                    state.absorb(held.job, held.fold)
                left_out = jump.opted_out | self._dropped.get(key, set())
                job = plan_fold(state, jump.turns, counter, jump.mate.context_budget, left_out)
            if job is None:
                await self._save(key, jump, landed, left_out)
                return []
            seen = {person: self._erasures.count(person) for person in job.people}
            try:
                result = await fold(self.session, jump.mate, job)
            except LoopflowError as exc:
                self._failed[key] = True
                log.warning("%s could not fold its memory of %s: %s", name, conversation, exc)
                await self._save(key, jump, landed, left_out)
                return []  # what it held is as it was: the next jump folds it again
            await self._count(Place(conversation, jump.guild), jump, result)
            landed = [*landed, _Landed(job, result, seen)]
            later = self._jumps.get(key)
            if later is not None and later.epoch == job.epoch and later.start > job.until:
                if self._stale(key, landed):
                    return []  # what it folded is folded again, without them, at that jump
                return landed  # the window jumped past it: saved with that jump's fold
            if not await self._save(key, jump, landed, left_out):
                return []
            landed = []

    async def _save(
        self, key: WindowKey, jump: _Jump, landed: list[_Landed], left_out: Collection[int]
    ) -> bool:
        """Take the folds that ``landed`` into the window's state, in order, and their
        notes; True if all were taken. Saved while no deletion of their people runs (they
        hold their locks), and only if none was deleted since a fold read their messages
        (what it folded is folded again, without them, at the next jump)."""
        if not landed:
            return True
        conversation, name = key
        people = {person for held in landed for person in held.seen}
        async with self._erasures.hold_all(people), self._locks.hold(key):
            if self._stale(key, landed):
                return False
            state = await self.store.load_window(conversation, name)
            taken = 0
            while taken < len(landed) and state.absorb(landed[taken].job, landed[taken].fold):
                taken += 1
            if taken:
                await self.store.save_window(conversation, name, state)
        for held in landed:  # notes outlive a reset
            for person, fact in held.fold.notes:
                if person in held.seen and person not in left_out:
                    await self._remember(jump.guild, name, person, fact, held.seen[person])
        return taken == len(landed)

    def _stale(self, key: WindowKey, landed: list[_Landed]) -> bool:
        """Whether the window was closed, or a person folded deleted, since the folds that
        ``landed`` read their messages (then none of them may be saved)."""
        return key in self._closed or any(self._erasures.stale(held.seen) for held in landed)

    async def _count(self, place: Place, jump: _Jump, result: Fold) -> None:
        """Tell the host what a fold request billed (usage and limits count folds too)."""
        if self.on_usage is None or not result.usage.total_tokens:
            return
        try:
            await self.on_usage(place, jump.mate, result.model, result.usage)
        except Exception:  # counting must never lose the fold itself
            log.exception("Could not count a fold's usage for %s", jump.mate.name)


def window_people(
    state: WindowState, turns: Sequence[Turn], opted_out: Collection[int] = ()
) -> set[int]:
    """The people (not mates, not opted out) who speak in the window: the turns from
    ``state.start`` on. Their notes go with the request."""
    people: set[int] = set()
    for turn in reversed(turns):
        if turn.message_id < state.start:
            break
        if not turn.mate and turn.speaker_id not in opted_out:
            people.add(turn.speaker_id)
    return people
