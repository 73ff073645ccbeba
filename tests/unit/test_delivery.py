"""Delivery: webhook reuse, re-creation, fallback to the bot, splitting, no pings.

Hand-written fakes stand in for discord.py's channel and webhook objects; they
raise discord.py's real exception types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import discord
import pytest

from loopflow.chat.streaming import MessageGone, StreamEditor
from loopflow_cog.delivery import NO_PINGS, Blocked, Delivery, Posted, Speaker
from loopflow_cog.webhooks import WEBHOOK_NAME

BOT = SimpleNamespace(id=1)


def http_error(cls: type[discord.HTTPException], status: int, code: int) -> discord.HTTPException:
    response = SimpleNamespace(status=status, reason="error")
    return cls(response, {"code": code, "message": "error"})  # type: ignore[arg-type]


def checked(content: str) -> str:
    """Discord refuses a message over 2000 characters (400, Invalid Form Body)."""
    if len(content) > 2000:
        raise http_error(discord.HTTPException, 400, 50035)
    return content


@dataclass
class FakeMessage:
    id: int
    content: str
    deleted: bool = False
    edits: list[str] = field(default_factory=list)

    async def edit(self, content: str, **kwargs: Any) -> None:
        if self.deleted:
            raise http_error(discord.NotFound, 404, 10008)
        self.edits.append(self.content)
        self.content = checked(content)


@dataclass
class FakeWebhook:
    id: int
    name: str = WEBHOOK_NAME
    token: str = "token"
    user: Any = field(default_factory=lambda: BOT)
    sent: list[dict[str, Any]] = field(default_factory=list)
    messages: list[FakeMessage] = field(default_factory=list)
    failures: list[discord.HTTPException] = field(default_factory=list)

    async def send(self, content: str, **kwargs: Any) -> FakeMessage:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append({"content": checked(content), **kwargs})
        self.messages.append(FakeMessage(len(self.sent), content))
        return self.messages[-1]

    async def edit_message(self, message_id: int, *, content: str, **kwargs: Any) -> None:
        if self.failures:
            raise self.failures.pop(0)
        await next(m for m in self.messages if m.id == message_id).edit(content)


@dataclass
class FakeChannel:
    id: int = 10
    manage_webhooks: bool = True
    existing: list[FakeWebhook] = field(default_factory=list)
    created: list[FakeWebhook] = field(default_factory=list)
    posted: list[dict[str, Any]] = field(default_factory=list)
    messages: list[FakeMessage] = field(default_factory=list)
    list_calls: int = 0
    create_failures: list[discord.HTTPException] = field(default_factory=list)
    send_failures: list[discord.HTTPException] = field(default_factory=list)

    @property
    def guild(self) -> SimpleNamespace:
        return SimpleNamespace(id=5, me=BOT)

    def permissions_for(self, member: Any) -> SimpleNamespace:
        return SimpleNamespace(manage_webhooks=self.manage_webhooks)

    async def webhooks(self) -> list[FakeWebhook]:
        self.list_calls += 1
        return list(self.existing)

    async def create_webhook(self, name: str, reason: str = "") -> FakeWebhook:
        if self.create_failures:
            raise self.create_failures.pop(0)
        webhook = FakeWebhook(id=100 + len(self.created), name=name)
        self.created.append(webhook)
        return webhook

    async def send(self, content: str, **kwargs: Any) -> FakeMessage:
        if self.send_failures:
            raise self.send_failures.pop(0)
        self.posted.append({"content": checked(content), **kwargs})
        self.messages.append(FakeMessage(1000 + len(self.posted), content))
        return self.messages[-1]


MAYA = Speaker("Maya", "https://example.com/maya.png")


@pytest.fixture()
def delivery() -> Delivery:
    return Delivery(lambda: BOT)  # type: ignore[arg-type,return-value]


async def send(delivery: Delivery, channel: FakeChannel, text: str) -> list[Posted]:
    """A whole reply at once, as the replier delivers it: a StreamEditor over post/edit."""
    editor: StreamEditor[Posted] = StreamEditor(
        lambda part: delivery.post(channel, MAYA, part),  # type: ignore[arg-type]
        lambda posted, part: delivery.edit(channel, posted, part),  # type: ignore[arg-type]
        room=lambda posted: posted.room,
        limit=delivery.part_limit(channel, MAYA),  # type: ignore[arg-type]
    )
    editor.feed(text)
    await editor.finish()
    return [posted for posted, _ in editor.messages]


async def test_the_webhook_is_created_once_and_reused(delivery: Delivery) -> None:
    channel = FakeChannel()
    for text in ("one", "two", "three"):
        sent = await send(delivery, channel, text)  # type: ignore[arg-type]
        assert all(p.webhook is not None for p in sent)
    assert len(channel.created) == 1 and channel.list_calls == 1
    webhook = channel.created[0]
    assert [m["content"] for m in webhook.sent] == ["one", "two", "three"]
    first = webhook.sent[0]
    assert first["username"] == "Maya"
    assert first["avatar_url"] == "https://example.com/maya.png"
    assert first["allowed_mentions"] is NO_PINGS
    assert first["wait"] is True
    assert delivery.is_own_webhook(webhook.id)
    assert not delivery.is_own_webhook(999)


async def test_an_existing_webhook_of_ours_is_reused_not_duplicated(delivery: Delivery) -> None:
    foreign = FakeWebhook(id=7, name="GitHub", user=SimpleNamespace(id=55))
    ours = FakeWebhook(id=8)
    channel = FakeChannel(existing=[foreign, ours])
    await send(delivery, channel, "hello")  # type: ignore[arg-type]
    assert channel.created == [] and [m["content"] for m in ours.sent] == ["hello"]


async def test_a_deleted_webhook_is_recreated_once_and_the_reply_lands(delivery: Delivery) -> None:
    channel = FakeChannel()
    await send(delivery, channel, "first")  # type: ignore[arg-type]
    channel.created[0].failures.append(http_error(discord.NotFound, 404, 10015))
    sent = await send(delivery, channel, "second")  # type: ignore[arg-type]
    assert all(p.webhook is not None for p in sent)
    assert len(channel.created) == 2
    assert [m["content"] for m in channel.created[1].sent] == ["second"]


async def test_a_webhook_deleted_twice_falls_back_to_the_bot(delivery: Delivery) -> None:
    channel = FakeChannel()
    await send(delivery, channel, "first")  # type: ignore[arg-type]
    channel.created[0].failures.append(http_error(discord.NotFound, 404, 10015))
    original_create = channel.create_webhook

    async def create_deleted(name: str, reason: str = "") -> FakeWebhook:
        webhook = await original_create(name, reason)
        webhook.failures.append(http_error(discord.NotFound, 404, 10015))
        return webhook

    channel.create_webhook = create_deleted  # type: ignore[method-assign]
    sent = await send(delivery, channel, "second")  # type: ignore[arg-type]
    assert not all(p.webhook is not None for p in sent)
    assert channel.posted[0]["content"] == "**Maya:** second"


async def test_without_manage_webhooks_the_bot_speaks_naming_the_mate(delivery: Delivery) -> None:
    channel = FakeChannel(manage_webhooks=False)
    sent = await send(delivery, channel, "hi @everyone")  # type: ignore[arg-type]
    assert not all(p.webhook is not None for p in sent) and channel.created == []
    assert channel.posted == [{"content": "**Maya:** hi @everyone", "allowed_mentions": NO_PINGS}]


async def test_forbidden_on_create_falls_back_and_is_remembered(delivery: Delivery) -> None:
    channel = FakeChannel()

    async def forbidden(name: str, reason: str = "") -> FakeWebhook:
        raise http_error(discord.Forbidden, 403, 50013)

    channel.create_webhook = forbidden  # type: ignore[method-assign]
    for text in ("a", "b"):
        assert (await send(delivery, channel, text))[0].webhook is None  # type: ignore[arg-type]
    assert channel.list_calls == 1  # not asked again on the next reply
    assert [p["content"] for p in channel.posted] == ["**Maya:** a", "**Maya:** b"]


async def test_long_replies_are_split_and_nothing_is_lost(delivery: Delivery) -> None:
    channel = FakeChannel()
    paragraphs = [f"Paragraph {i}. " + "word " * 60 for i in range(20)]
    text = "\n\n".join(paragraphs)
    sent = await send(delivery, channel, text)  # type: ignore[arg-type]
    contents = [m["content"] for m in channel.created[0].sent]
    assert len(sent) == len(contents) > 1
    assert all(len(c) <= 2000 for c in contents)
    assert " ".join(contents).split() == text.split()


async def test_fallback_parts_fit_with_the_name_heading(delivery: Delivery) -> None:
    channel = FakeChannel(manage_webhooks=False)
    await send(delivery, channel, "x" * 3990)  # type: ignore[arg-type]
    assert all(len(p["content"]) <= 2000 for p in channel.posted)
    assert sum(p["content"].count("x") for p in channel.posted) == 3990


async def test_a_failure_midway_posts_the_rest_as_the_bot(delivery: Delivery) -> None:
    channel = FakeChannel()
    await send(delivery, channel, "warm up")  # type: ignore[arg-type]
    webhook = channel.created[0]
    text = "\n\n".join(["a" * 1500, "b" * 1500, "c" * 1500])
    original = webhook.send
    calls = 0

    async def fail_second(content: str, **kwargs: Any) -> SimpleNamespace:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise http_error(discord.HTTPException, 500, 0)
        return await original(content, **kwargs)

    webhook.send = fail_second  # type: ignore[method-assign]
    sent = await send(delivery, channel, text)  # type: ignore[arg-type]
    assert len(sent) == 3
    # The part that failed went out from the bot; the next part used the webhook again.
    assert [m["content"] for m in webhook.sent[1:]] == ["a" * 1500, "c" * 1500]
    assert [p["content"] for p in channel.posted] == ["**Maya:** " + "b" * 1500]


async def test_edits_go_through_the_webhook_or_keep_the_bots_heading(delivery: Delivery) -> None:
    channel = FakeChannel()
    edits: list[tuple[int, dict[str, Any]]] = []

    async def edit_message(message_id: int, **kwargs: Any) -> None:
        edits.append((message_id, kwargs))

    posted = await delivery.post(channel, MAYA, "draft")  # type: ignore[arg-type]
    posted.webhook.edit_message = edit_message  # type: ignore[union-attr]
    await delivery.edit(channel, posted, "final")  # type: ignore[arg-type]
    assert edits == [
        (
            posted.message.id,
            {"content": "final", "allowed_mentions": NO_PINGS, "thread": discord.utils.MISSING},
        )
    ]

    bare = FakeChannel(id=11, manage_webhooks=False)
    by_bot = await delivery.post(bare, MAYA, "draft")  # type: ignore[arg-type]
    changes: list[dict[str, Any]] = []

    async def edit(**kwargs: Any) -> None:
        changes.append(kwargs)

    by_bot.message.edit = edit  # type: ignore[attr-defined]
    await delivery.edit(bare, by_bot, "final")  # type: ignore[arg-type]
    assert changes == [{"content": "**Maya:** final", "allowed_mentions": NO_PINGS}]
    assert delivery.part_limit(bare, MAYA) == 2000 - len("**Maya:** ")  # type: ignore[arg-type]
    assert delivery.part_limit(channel, MAYA) == 2000  # type: ignore[arg-type]


async def test_empty_replies_post_nothing(delivery: Delivery) -> None:
    channel = FakeChannel()
    assert await send(delivery, channel, "  \n ") == []  # type: ignore[arg-type]
    assert channel.created == [] and channel.posted == []


async def test_a_bot_post_says_how_much_room_it_has_and_always_fits(delivery: Delivery) -> None:
    channel = FakeChannel(manage_webhooks=False)
    assert delivery.part_limit(channel, MAYA) == 2000 - len("**Maya:** ")  # type: ignore[arg-type]
    posted = await delivery.post(channel, MAYA, "word " * 399)  # type: ignore[arg-type]
    assert posted.room == 2000 - len("**Maya:** ") and posted.permission_missing
    assert len(channel.posted[0]["content"]) <= 2000


async def test_a_long_reply_without_webhooks_shows_once(delivery: Delivery) -> None:
    # The first guess (a webhook, 2000 characters) is wrong: the bot must post itself.
    channel = FakeChannel()
    channel.create_failures.append(http_error(discord.HTTPException, 400, 30007))
    sentences = [f"Sentence {i} of a long answer. " for i in range(120)]  # ~3,600 chars
    sent = await send(delivery, channel, "".join(sentences))  # type: ignore[arg-type]
    contents = [m.content for m in channel.messages]
    assert len(sent) == len(contents) == 2 and all(len(c) <= 2000 for c in contents)
    words = " ".join(c.removeprefix("**Maya:** ") for c in contents).split()
    assert words == "".join(sentences).split()
    assert not any(p.permission_missing for p in sent)  # 15 webhooks: no permission to blame


async def test_a_channel_at_the_webhook_limit_is_not_asked_on_every_post(
    delivery: Delivery,
) -> None:
    channel = FakeChannel()
    channel.create_failures.append(http_error(discord.HTTPException, 400, 30007))
    for text in ("one", "two", "three"):
        posted = await delivery.post(channel, MAYA, text)  # type: ignore[arg-type]
        assert posted.webhook is None and not posted.permission_missing
    assert channel.list_calls == 1


async def test_a_permission_granted_later_is_used(delivery: Delivery) -> None:
    channel = FakeChannel(manage_webhooks=False)
    assert (await delivery.post(channel, MAYA, "before")).webhook is None  # type: ignore[arg-type]
    channel.manage_webhooks = True  # an admin followed the hint
    assert (await delivery.post(channel, MAYA, "after")).webhook is not None  # type: ignore[arg-type]


@pytest.mark.parametrize("code", [50035, 0], ids=["refused-name", "server-error"])
async def test_a_failed_webhook_post_falls_back_without_blaming_permissions(
    delivery: Delivery, code: int
) -> None:
    channel = FakeChannel()
    await delivery.post(channel, MAYA, "warm up")  # type: ignore[arg-type]
    status = 400 if code else 500
    channel.created[0].failures.append(http_error(discord.HTTPException, status, code))
    posted = await delivery.post(channel, MAYA, "hello")  # type: ignore[arg-type]
    assert posted.webhook is None and not posted.permission_missing
    assert channel.posted[-1]["content"] == "**Maya:** hello"


async def test_text_blocked_by_automod_is_not_posted_another_way(delivery: Delivery) -> None:
    channel = FakeChannel()
    await delivery.post(channel, MAYA, "warm up")  # type: ignore[arg-type]
    channel.created[0].failures.append(http_error(discord.HTTPException, 400, 200000))
    with pytest.raises(Blocked) as blocked:
        await delivery.post(channel, MAYA, "a forbidden word")  # type: ignore[arg-type]
    assert blocked.value.kind == "automod" and channel.posted == []
    bare = FakeChannel(id=11, manage_webhooks=False)
    bare.send_failures.append(http_error(discord.HTTPException, 400, 200000))
    with pytest.raises(Blocked):
        await delivery.post(bare, MAYA, "a forbidden word")  # type: ignore[arg-type]


async def test_editing_a_deleted_message_says_it_is_gone(delivery: Delivery) -> None:
    channel = FakeChannel()
    posted = await delivery.post(channel, MAYA, "draft")  # type: ignore[arg-type]
    channel.created[0].messages[0].deleted = True
    with pytest.raises(MessageGone):
        await delivery.edit(channel, posted, "final")  # type: ignore[arg-type]
    bare = FakeChannel(id=11, manage_webhooks=False)
    by_bot = await delivery.post(bare, MAYA, "draft")  # type: ignore[arg-type]
    bare.messages[0].deleted = True
    with pytest.raises(MessageGone):
        await delivery.edit(bare, by_bot, "final")  # type: ignore[arg-type]


LINK = "-# \N{RIGHTWARDS ARROW WITH HOOK} <https://discord.com/channels/5/10/77>\n"


async def test_a_webhook_answer_links_the_message_it_answers_within_the_limit(
    delivery: Delivery,
) -> None:
    channel = FakeChannel()
    assert delivery.part_limit(channel, MAYA, answers=77) == 2000 - len(LINK)  # type: ignore[arg-type]
    posted = await delivery.post(channel, MAYA, "word " * 400, answers=77)  # type: ignore[arg-type]
    (sent,) = channel.created[0].sent
    # Small text, the link in angle brackets (no embed), then the mate's words.
    assert sent["content"].startswith(LINK) and len(sent["content"]) <= 2000
    assert sent["allowed_mentions"] is NO_PINGS
    assert posted.room == 2000 - len(LINK)
    # An edit (streaming, 🔄) keeps the line above the new words.
    await delivery.edit(channel, posted, "The final words.")  # type: ignore[arg-type]
    assert channel.created[0].messages[0].content == LINK + "The final words."
    # The next part answers nothing: no line.
    await delivery.post(channel, MAYA, "more")  # type: ignore[arg-type]
    assert channel.created[0].sent[1]["content"] == "more"


async def test_the_bot_answers_a_message_with_a_native_reply_that_pings_no_one(
    delivery: Delivery,
) -> None:
    channel = FakeChannel(manage_webhooks=False)
    assert delivery.part_limit(channel, MAYA, answers=77) == 2000 - len("**Maya:** ")  # type: ignore[arg-type]
    await delivery.post(channel, MAYA, "Yes.", answers=77)  # type: ignore[arg-type]
    (posted,) = channel.posted
    assert posted["content"] == "**Maya:** Yes."  # no link line: the reply shows it
    reference = posted["reference"]
    assert (reference.message_id, reference.channel_id, reference.guild_id) == (77, 10, 5)
    assert reference.fail_if_not_exists is False  # deleted meanwhile: posted all the same
    assert posted["mention_author"] is False and posted["allowed_mentions"] is NO_PINGS
    await delivery.post(channel, MAYA, "No.")  # type: ignore[arg-type]
    assert "reference" not in channel.posted[1]
