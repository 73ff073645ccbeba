"""What the model reads of a Discord message: words, attachments, stickers, polls, forwards.

Hand-written stand-ins for ``discord.Message`` carry exactly the attributes ``to_turn``
reads; attachments count how often they are downloaded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any, Optional

from loopflow_cog.turns import (
    IMAGE_SIZE_LIMIT,
    TEXT_ATTACHMENT_LIMIT,
    TEXT_ATTACHMENTS_TOTAL,
    posted_turn,
    to_turn,
)

SAM = SimpleNamespace(id=7, display_name="Sam", name="sam", bot=False)
WHEN = datetime(2026, 4, 18, 12, 0, tzinfo=timezone.utc)


@dataclass
class FakeAttachment:
    filename: str
    data: bytes = b""
    content_type: Optional[str] = None
    size: int = -1
    reads: int = 0

    def __post_init__(self) -> None:
        if self.size < 0:
            self.size = len(self.data)

    @property
    def url(self) -> str:
        return f"https://cdn.discordapp.com/attachments/1/2/{self.filename}?ex=1"

    async def read(self) -> bytes:
        self.reads += 1
        return self.data


@dataclass
class FakeGuild:
    members: dict[int, str] = field(default_factory=dict)

    def get_member(self, user_id: int) -> Any:
        name = self.members.get(user_id)
        return None if name is None else SimpleNamespace(display_name=name)

    def get_role(self, role_id: int) -> Any:
        return None

    def get_channel_or_thread(self, channel_id: int) -> Any:
        return None


@dataclass
class FakeMessage:
    content: str = ""
    attachments: list[FakeAttachment] = field(default_factory=list)
    stickers: list[Any] = field(default_factory=list)
    poll: Any = None
    message_snapshots: list[Any] = field(default_factory=list)
    system: bool = False
    embeds: list[Any] = field(default_factory=list)
    guild: Any = field(default_factory=FakeGuild)
    id: int = 99
    author: Any = field(default_factory=lambda: SAM)
    webhook_id: Optional[int] = None
    created_at: datetime = WHEN

    @property
    def clean_content(self) -> str:
        return self.content

    def is_system(self) -> bool:
        return self.system


def snapshot(content: str = "", **parts: Any) -> Any:
    import re

    return SimpleNamespace(
        content=content,
        attachments=parts.get("attachments", []),
        stickers=parts.get("stickers", []),
        embeds=[],
        raw_mentions=[int(x) for x in re.findall(r"<@!?(\d+)>", content)],
        raw_role_mentions=[],
        raw_channel_mentions=[],
    )


async def test_words_and_time_make_the_turn() -> None:
    turn = await to_turn(FakeMessage("hello @everyone"))  # type: ignore[arg-type]
    assert turn.text == "hello @\u200beveryone"
    assert turn.attached == "" and turn.images == ()
    assert (turn.speaker_id, turn.display_name, turn.message_id) == (7, "Sam", 99)
    assert turn.time == WHEN


async def test_text_attachments_are_inlined_within_a_total_per_message() -> None:
    files = [
        FakeAttachment(f"notes{i}.txt", (f"file {i} " + "x" * 15_990).encode()[:16_000])
        for i in range(10)
    ]
    turn = await to_turn(FakeMessage("read these", files))  # type: ignore[arg-type]
    assert turn.text == "read these"
    read = [f for f in files if f.reads]
    assert len(read) == TEXT_ATTACHMENTS_TOTAL // TEXT_ATTACHMENT_LIMIT == 2
    assert turn.attached.startswith("\n\n[notes0.txt]\nfile 0 xxx")
    assert "[notes1.txt]\nfile 1 " in turn.attached
    for i in range(2, 10):
        assert f"\n[attachment: notes{i}.txt (not read: over the message's text limit)]" in (
            turn.attached
        )
    assert len(turn.attached.encode()) < TEXT_ATTACHMENTS_TOTAL + 1_000


async def test_a_text_attachment_over_its_own_limit_is_named_not_read() -> None:
    big = FakeAttachment("dump.log", b"x" * (TEXT_ATTACHMENT_LIMIT + 1), "text/plain")
    turn = await to_turn(FakeMessage("", [big]))  # type: ignore[arg-type]
    assert big.reads == 0
    assert turn.content == "[attachment: dump.log]"


async def test_only_images_providers_accept_are_sent() -> None:
    files = [
        FakeAttachment("cat.png", b"png", "image/png"),
        FakeAttachment("dog.JPG", b"jpg"),  # no content type: guessed from the name
        FakeAttachment("anim.gif", b"gif", "image/gif"),
        FakeAttachment("pic.webp", b"webp", "image/webp"),
        FakeAttachment("logo.svg", b"<svg/>", "image/svg+xml"),
        FakeAttachment("photo.heic", b"heic", "image/heic"),
        FakeAttachment("huge.png", b"", "image/png", size=IMAGE_SIZE_LIMIT + 1),
        FakeAttachment("edge.png", b"", "image/png", size=IMAGE_SIZE_LIMIT),
    ]
    turn = await to_turn(FakeMessage("look", files))  # type: ignore[arg-type]
    sent = [url.split("/")[-1].split("?")[0] for url in turn.images]
    assert sent == ["cat.png", "dog.JPG", "anim.gif", "pic.webp", "edge.png"]
    assert turn.attached == (
        "\n[image: logo.svg (a type models cannot read)]"
        "\n[image: photo.heic (a type models cannot read)]"
        "\n[image: huge.png (over 5 MB)]"
    )
    assert not any(f.reads for f in files)


async def test_a_sticker_is_described() -> None:
    turn = await to_turn(FakeMessage(stickers=[SimpleNamespace(name="wave")]))  # type: ignore[arg-type]
    assert turn.text == "" and turn.content == "[sticker: wave]"


async def test_a_poll_is_described_with_its_answers() -> None:
    poll = SimpleNamespace(
        question="Pizza or tacos, @everyone?",
        answers=[SimpleNamespace(text="Pizza"), SimpleNamespace(text="Tacos")],
    )
    turn = await to_turn(FakeMessage(poll=poll))  # type: ignore[arg-type]
    assert turn.content == "[poll: Pizza or tacos, @\u200beveryone? (Pizza / Tacos)]"


async def test_a_forward_reads_as_its_snapshot() -> None:
    forwarded = snapshot(
        "ping <@42> and @here",
        stickers=[SimpleNamespace(name="party")],
        attachments=[FakeAttachment("a.txt", b"inside", "text/plain")],
    )
    message = FakeMessage(message_snapshots=[forwarded], guild=FakeGuild({42: "Alice"}))
    turn = await to_turn(message)  # type: ignore[arg-type]
    assert turn.content == (
        "[forwarded message]\nping @Alice and @\u200bhere\n\n[a.txt]\ninside\n[sticker: party]"
    )


async def test_system_messages_carry_nothing() -> None:
    joined = FakeMessage("my-thread", system=True)  # e.g. "Sam started a thread: my-thread"
    turn = await to_turn(joined)  # type: ignore[arg-type]
    assert turn.content == "" and turn.images == ()


LINK = "-# \N{RIGHTWARDS ARROW WITH HOOK} <https://discord.com/channels/5/10/77>\n"


async def test_a_mates_words_leave_out_the_line_linking_what_they_answer() -> None:
    posted = FakeMessage(LINK + "The build is green.", webhook_id=300)
    turn = await to_turn(posted, mate="maya")  # type: ignore[arg-type]
    assert turn.text == "The build is green."
    # A person writing the same line wrote it: it is their words.
    said = await to_turn(FakeMessage(LINK + "look"))  # type: ignore[arg-type]
    assert said.text == LINK + "look"


async def test_a_mates_words_posted_by_the_bot_leave_out_its_name_heading() -> None:
    posted = FakeMessage("**Maya:** The build is green.")
    turn = await to_turn(posted, mate="maya")  # type: ignore[arg-type]
    assert turn.text == "The build is green."
    # Through a webhook there is no heading: words that look like one are the mate's.
    own = await to_turn(FakeMessage("**Note:** green.", webhook_id=300), mate="maya")  # type: ignore[arg-type]
    assert own.text == "**Note:** green."


async def test_a_mates_post_becomes_its_turn_with_the_words_it_posted() -> None:
    """The turn a mate's reply adds to its conversation: what the reply wrote, under the
    mate's name, the same as reading the posted message would give, and the message's
    words are not read again (a reply's post carries nothing but its words)."""

    class Posted(FakeMessage):
        @property
        def clean_content(self) -> str:
            raise AssertionError("the posted words are known: not read again")

    maya = SimpleNamespace(id=5, display_name="Maya", name="Maya", bot=True)
    posted = Posted("> -# ↪ line\nHi Sam, here it is.", author=maya, id=120, webhook_id=4)
    turn = posted_turn(posted, "maya", "Hi Sam, here it is.")  # type: ignore[arg-type]
    read = await to_turn(FakeMessage(posted.content, author=maya, id=120, webhook_id=4), "maya")
    assert turn == dataclasses.replace(read, text="Hi Sam, here it is.")
    assert (turn.mate, turn.speaker_id, turn.message_id, turn.time) == ("maya", 5, 120, WHEN)
