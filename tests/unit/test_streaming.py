"""The stream editor: early post, edit cadence, overflow into new messages, back-off.

The tests run on a virtual clock (``virtual_clock``): ``await asyncio.sleep(0.02)`` is
exactly 20 ms of stream time, and the times the fake chat records are exact, so the
cadence assertions hold on any machine and fail whenever the editor's pacing changes.
"""

from __future__ import annotations

import asyncio

from virtual_clock import virtual_time

from loopflow.chat.streaming import LIVE, MessageGone, StreamEditor, TextRefused
from loopflow.io.splitting import split_message


class FakeChat:
    """Messages by id, with a log of every call and its (start) time.

    ``edit_delay`` makes each edit take that long, like a slow or rate-limited chat; the
    most edits ever in flight at once are counted in ``max_in_flight``.
    """

    def __init__(self, edit_delay: float = 0.0) -> None:
        self.messages: dict[int, str] = {}
        self.deleted: set[int] = set()
        self.calls: list[tuple[str, int, float]] = []
        self.edit_delay = edit_delay
        self.fail_edits = 0
        self.in_flight = 0
        self.max_in_flight = 0

    async def post(self, text: str) -> int:
        handle = len(self.messages) + 1
        self.messages[handle] = text
        self.calls.append(("post", handle, asyncio.get_running_loop().time()))
        return handle

    async def edit(self, handle: int, text: str) -> None:
        started = asyncio.get_running_loop().time()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.edit_delay)
        finally:
            self.in_flight -= 1
        if self.fail_edits:
            self.fail_edits -= 1
            self.calls.append(("failed edit", handle, started))
            raise RuntimeError("429 or gone")
        self.messages[handle] = text
        self.calls.append(("edit", handle, started))

    async def delete(self, handle: int) -> None:
        if handle in self.deleted:
            raise MessageGone("unknown message")
        self.deleted.add(handle)
        self.calls.append(("delete", handle, asyncio.get_running_loop().time()))

    def shown(self) -> list[str]:
        return [self.messages[k] for k in sorted(self.messages) if k not in self.deleted]


def editor(chat: FakeChat, **options: float) -> StreamEditor[int]:
    settings = {"interval": 0.1, "first_delay": 0.05, **options}
    return StreamEditor(chat.post, chat.edit, **settings)  # type: ignore[arg-type]


@virtual_time
async def test_a_fast_short_reply_is_one_post_and_no_edit() -> None:
    chat = FakeChat()
    stream = editor(chat)
    for delta in ("Hello", " there", "!"):
        stream.feed(delta)
    assert await stream.finish() == [1]
    assert chat.shown() == ["Hello there!"]
    assert [kind for kind, _, _ in chat.calls] == ["post"]


@virtual_time
async def test_a_reply_finished_before_its_first_round_runs_no_background_task() -> None:
    """The first round waits as a timer: a reply that is done before it is due (most
    short replies) runs no task besides its own."""
    chat = FakeChat()
    stream = editor(chat, first_delay=0.8)
    before = asyncio.all_tasks()
    stream.feed("Hello")
    await asyncio.sleep(0.5)
    stream.feed(" there!")
    assert asyncio.all_tasks() == before
    assert await stream.finish() == [1]
    assert chat.shown() == ["Hello there!"]
    await asyncio.sleep(2)  # nothing fires later
    assert [kind for kind, _, _ in chat.calls] == ["post"]


@virtual_time
async def test_the_reply_appears_early_and_edits_are_spaced() -> None:
    chat = FakeChat()
    stream = editor(chat)
    start = asyncio.get_running_loop().time()
    for i in range(30):
        stream.feed(f"word{i} ")
        await asyncio.sleep(0.02)  # 0.6 s of streaming
    elapsed = asyncio.get_running_loop().time() - start
    await stream.finish()
    kinds = [kind for kind, _, _ in chat.calls]
    times = [t - start for _, _, t in chat.calls]
    # The first text shows after first_delay (0.05 s), not when the reply is complete.
    assert kinds[0] == "post" and 0.05 <= times[0] < 0.07
    # It grows while written, but never faster than one round of edits per interval.
    edits_while_streaming = [t for kind, t in zip(kinds, times) if kind == "edit" and t < elapsed]
    assert len(edits_while_streaming) >= 4
    assert kinds.count("edit") <= elapsed / 0.1 + 1
    gaps = [b - a for a, b in zip(times[:-1], times[1:-1])]  # the final edit may come sooner
    assert all(gap >= 0.1 - 1e-9 for gap in gaps), gaps
    assert chat.shown() == ["".join(f"word{i} " for i in range(30)).strip()]


@virtual_time
async def test_a_reply_that_outgrows_a_message_continues_in_a_new_one() -> None:
    chat = FakeChat()
    stream = editor(chat, first_delay=0.0, interval=0.01)
    paragraph = "x" * 900 + "\n\n"
    for _ in range(5):
        stream.feed(paragraph)
        await asyncio.sleep(0.03)
    await stream.finish()
    shown = chat.shown()
    assert len(shown) == 3 and all(len(part) <= 2000 for part in shown)
    assert "".join(shown).count("x") == 4500


@virtual_time
async def test_an_open_code_block_renders_closed_while_streaming() -> None:
    chat = FakeChat()
    stream = editor(chat, first_delay=0.0)
    stream.feed("```python\nprint(1)\n")
    await asyncio.sleep(0.03)
    assert chat.shown() == ["```python\nprint(1)\n```"]
    stream.feed("print(2)\n```\nDone.")
    await stream.finish()
    assert chat.shown() == ["```python\nprint(1)\nprint(2)\n```\nDone."]


@virtual_time
async def test_slow_or_rate_limited_edits_back_off_and_the_final_text_lands() -> None:
    chat = FakeChat(edit_delay=0.15)  # each edit takes 0.15 s; the editor may edit every 0.01 s
    stream = editor(chat, first_delay=0.0, interval=0.01)
    for i in range(40):
        stream.feed(f"{i} ")
        await asyncio.sleep(0.01)  # 0.4 s of streaming: 40 changes
    chat.fail_edits = 1  # the next edit is refused (rate limited)
    await asyncio.sleep(0.2)
    await stream.finish()
    assert chat.shown() == [" ".join(str(i) for i in range(40))]
    edits = [(kind, t) for kind, _, t in chat.calls if kind != "post"]
    assert ("failed edit" in [kind for kind, _ in edits]) and edits[-1][0] == "edit"
    # One edit at a time, and a slow chat gets fewer edits, each with the newest text:
    # 0.6 s at 0.15 s an edit leaves room for at most 5 (not one per change).
    assert chat.max_in_flight == 1
    assert len(edits) <= 0.6 / 0.15 + 1, edits
    starts = [t for _, t in edits]
    assert all(b - a >= 0.15 for a, b in zip(starts, starts[1:])), starts


@virtual_time
async def test_a_message_that_cannot_be_edited_at_the_end_is_posted_again() -> None:
    chat = FakeChat()
    stream = editor(chat, first_delay=0.0, interval=10)
    stream.feed("partial")
    await asyncio.sleep(0.02)
    stream.feed(" and the rest")
    chat.fail_edits = 1
    await stream.finish()
    assert chat.messages[2] == "partial and the rest"


@virtual_time
async def test_nothing_fed_posts_nothing() -> None:
    chat = FakeChat()
    assert await editor(chat).finish() == []
    assert chat.calls == []


class StrictChat(FakeChat):
    """Posts like a chat that puts a heading before the text (a bot speaking for a mate)
    and refuses any message over 2000 characters, as Discord does."""

    heading = "**Maya:** "

    def __init__(self) -> None:
        super().__init__()
        self.gone: set[int] = set()
        self.posted_texts: list[str] = []

    def room(self, handle: int) -> int:
        return 2000 - len(self.heading)

    async def post(self, text: str) -> int:
        fitted = split_message(text, self.room(0))[0]  # what Delivery.post does
        self.posted_texts.append(fitted)
        return await super().post(self._checked(fitted))

    async def edit(self, handle: int, text: str) -> None:
        if handle in self.gone:
            raise MessageGone(handle)
        await super().edit(handle, self._checked(text))

    def _checked(self, text: str) -> str:
        assert len(self.heading + text) <= 2000, "Discord refuses this (50035)"
        return text


async def test_parts_are_cut_again_when_a_message_holds_less_than_expected() -> None:
    chat = StrictChat()
    stream = StreamEditor(chat.post, chat.edit, room=chat.room, first_delay=0.0, interval=0.01)
    sentences = [f"Sentence number {i} says a little more. " for i in range(90)]  # ~3,500
    for sentence in sentences:
        stream.feed(sentence)
        await asyncio.sleep(0.001)
    await stream.finish()
    shown = chat.shown()
    assert len(shown) == 2 and all(len(chat.heading + part) <= 2000 for part in shown)
    assert " ".join(shown).split() == "".join(sentences).split()  # each word exactly once
    assert len(chat.posted_texts) == 2  # no part was posted twice


async def test_a_reply_posted_at_once_that_does_not_fit_is_cut_again() -> None:
    chat = StrictChat()
    stream = StreamEditor(chat.post, chat.edit, room=chat.room)
    stream.feed("word " * 700)  # 3,500 characters before the first post
    await stream.finish()
    assert [len(part.split()) for part in chat.shown()] != [] and len(chat.posted_texts) == 2
    assert " ".join(chat.shown()).split() == ["word"] * 700


async def test_a_deleted_message_is_never_posted_again() -> None:
    chat = StrictChat()
    stream = StreamEditor(chat.post, chat.edit, room=chat.room, first_delay=0.0, interval=10)
    stream.feed("The first words")
    await asyncio.sleep(0.02)
    chat.gone.add(1)  # a moderator deleted it
    stream.feed(" and the rest, " + "more " * 500)  # would need a second message too
    assert await stream.finish() == []
    assert chat.posted_texts == ["The first words"] and stream.messages == []
    assert stream.handles == [1]


async def test_refused_text_stops_the_editor_for_good() -> None:
    chat = FakeChat()
    refusals = 0

    async def refusing_post(text: str) -> int:
        nonlocal refusals
        refusals += 1
        raise TextRefused("blocked by AutoMod")

    stream = StreamEditor(refusing_post, chat.edit, first_delay=0.0, interval=0.01)
    stream.feed("a forbidden word")
    await asyncio.sleep(0.05)
    stream.feed(" and more")
    assert await stream.finish() == []
    assert refusals == 1 and isinstance(stream.refused, TextRefused)
    assert chat.calls == []


async def test_aclose_leaves_nothing_running() -> None:
    chat = FakeChat()
    stream = editor(chat, first_delay=0.0, interval=0.01)
    stream.feed("half a reply")
    await asyncio.sleep(0.03)
    await stream.aclose()
    stream.feed(" and the rest")
    others = asyncio.all_tasks() - {asyncio.current_task()}
    assert not [t for t in others if "StreamEditor" in repr(t.get_coro())]
    assert chat.shown() == ["half a reply"]


async def test_live_pacing_shows_the_text_as_it_comes_in_one_part() -> None:
    chat = FakeChat()
    stream = StreamEditor(
        chat.post,
        chat.edit,
        interval=LIVE.interval,
        first_delay=LIVE.first_delay,
        split=LIVE.split,
        limit=10,
    )
    stream.feed("```py\nprint('a long line')")  # over the limit, an open fence
    await asyncio.sleep(0.01)
    assert chat.shown() == ["```py\nprint('a long line')"]  # not cut, not sealed
    stream.feed(" # more")
    assert await stream.finish() == [1]
    assert chat.shown() == ["```py\nprint('a long line') # more"]


# --- rewriting a reply already shown (🔄 regenerate) -----------------------------------------


def rewriter(chat: FakeChat, *old: str, **options: float) -> StreamEditor[int]:
    """An editor that rewrites ``old`` messages already in ``chat``."""
    for text in old:
        chat.messages[len(chat.messages) + 1] = text
    stream = StreamEditor(
        chat.post,  # type: ignore[arg-type]
        chat.edit,
        delete=chat.delete,
        **{"interval": 0.1, "first_delay": 0.05, **options},  # type: ignore[arg-type]
    )
    stream.adopt([(handle, text) for handle, text in chat.messages.items()])
    return stream


@virtual_time
async def test_a_shorter_rewrite_edits_the_first_message_and_deletes_the_rest() -> None:
    chat = FakeChat()
    stream = rewriter(chat, "old one", "old two")
    stream.feed("new")
    assert await stream.finish() == [1]
    assert chat.shown() == ["new"] and chat.deleted == {2}
    assert [kind for kind, _, _ in chat.calls] == ["edit", "delete"]  # nothing posted


@virtual_time
async def test_a_longer_rewrite_posts_the_parts_it_needs() -> None:
    chat = FakeChat()
    stream = rewriter(chat, "old", limit=20)
    stream.feed("A first sentence. And a second one.")
    assert await stream.finish() == [1, 2]
    assert chat.shown() == ["A first sentence.", "And a second one."]


@virtual_time
async def test_a_rewrite_with_nothing_written_leaves_the_old_messages() -> None:
    chat = FakeChat()
    stream = rewriter(chat, "old one", "old two")
    assert await stream.finish() == [1, 2]
    assert chat.shown() == ["old one", "old two"] and chat.calls == []


@virtual_time
async def test_restore_puts_the_old_text_back_and_deletes_what_the_rewrite_posted() -> None:
    chat = FakeChat()
    stream = rewriter(chat, "old", limit=20)
    stream.feed("A first sentence. And a second one.")
    await asyncio.sleep(0.2)  # a round of edits and posts went out
    assert chat.shown() == ["A first sentence.", "And a second one."]
    await stream.restore()
    assert chat.shown() == ["old"] and chat.deleted == {2}
    assert stream.messages == [(1, "old")]


async def test_a_rewrite_fits_the_room_of_the_messages_it_adopts() -> None:
    # A message that holds less than a whole part (a heading, a line linking what it
    # answers) is never edited past its room, nor posted anew for it.
    chat = StrictChat()
    chat.messages[1] = "old"
    stream = StreamEditor(chat.post, chat.edit, room=chat.room, delete=chat.delete)
    stream.adopt([(1, "old")])
    text = "word " * 700  # 3,500 characters: two parts
    stream.feed(text)
    assert await stream.finish() == [1, 2]
    assert " ".join(chat.shown()).split() == text.split()
    assert len(chat.posted_texts) == 1  # only the second part is new
