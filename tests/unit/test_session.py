"""The session layer: turns and a mate in, the provider request and the reply out."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from loopflow.errors import (
    ContextTooLongError,
    MissingKeyError,
    NothingToAnswerError,
    RateLimitError,
)
from loopflow.io.session import (
    NEWEST_TURN_FLOOR,
    Reply,
    Session,
    Turn,
    awaits_answer,
    supports_vision,
)
from loopflow.mates import Mate
from loopflow.providers.base import Message, Usage
from loopflow.providers.fake import FakeProvider

MAYA = Mate(name="maya", display_name="Maya", system_prompt="You are Maya.", model="gpt-4o")
MERLIN = Mate(
    name="merlin", display_name="Merlin", system_prompt="You are Merlin.", provider="anthropic"
)


def human(text: str, name: str = "Alice", message_id: int = 0) -> Turn:
    return Turn(speaker_id=hash(name) % 1000, display_name=name, text=text, message_id=message_id)


def said_by(mate: Mate, text: str) -> Turn:
    return Turn(speaker_id=0, display_name=mate.display_name, text=text, mate=mate.name)


def session_with(*replies: object) -> tuple[Session, FakeProvider]:
    fake = FakeProvider(replies=list(replies))
    models = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5"}
    return Session({"openai": fake, "anthropic": fake}, models=models), fake


def test_history_becomes_prefixed_user_turns_and_own_assistant_turns() -> None:
    session, _ = session_with()
    turns = [
        human("hi all", "Alice"),
        said_by(MAYA, "Hello Alice!"),
        said_by(MERLIN, "Greetings."),
        human("maya, thoughts?", "Bob"),
    ]
    request = session.build(MAYA, turns).request
    assert request.system == "You are Maya."
    assert request.model == "gpt-4o"
    assert request.messages == (
        Message("user", "Alice: hi all"),
        Message("assistant", "Hello Alice!"),
        Message("user", "Merlin: Greetings."),
        Message("user", "Bob: maya, thoughts?"),
    )
    # The same history from merlin's side: maya is a named participant.
    merlin_view = session.build(MERLIN, turns).request
    assert merlin_view.messages[1] == Message("user", "Maya: Hello Alice!")
    assert merlin_view.messages[2] == Message("assistant", "Greetings.")
    assert merlin_view.model == "claude-sonnet-4-5"


def test_budget_drops_oldest_first_and_always_keeps_the_newest() -> None:
    session, _ = session_with()
    small = MAYA.replace(context_budget=300)
    turns = [human(f"message number {i} " + "word " * 20, message_id=i) for i in range(40)]
    prompt = session.build(small, turns)
    kept = prompt.request.messages
    assert 0 < len(kept) < 40
    assert prompt.omitted == 40 - len(kept)
    assert kept[-1].text.startswith("Alice: message number 39 ")
    assert kept[0].text.startswith(f"Alice: message number {40 - len(kept)} ")
    assert prompt.tokens <= 300
    # The newest turn is kept even when it alone is over the budget.
    huge = [human("x " * 2000)]
    assert len(session.build(small, huge).request.messages) == 1


def test_budget_is_counted_with_the_real_tokenizer() -> None:
    session, _ = session_with()
    counter = session.counters.for_model("openai", "gpt-4o")
    turns = [human("alpha beta gamma delta " * 5, message_id=i) for i in range(10)]
    prompt = session.build(MAYA, turns)
    expected = counter.count_message(MAYA.system_prompt) + 3
    expected += sum(counter.count_message(m.text) for m in prompt.request.messages)
    assert prompt.tokens == expected


def test_empty_turns_are_skipped_and_images_follow_vision_support() -> None:
    session, _ = session_with()
    picture = Turn(1, "Alice", "look", images=("https://cdn.example/cat.png",))
    turns = [human(""), picture]
    vision = session.build(MAYA, turns).request.messages
    assert vision == (Message("user", "Alice: look", ("https://cdn.example/cat.png",)),)
    text_only = session.build(MAYA.replace(model="llama3"), turns).request.messages
    assert text_only == (Message("user", "Alice: look\n[image: cat.png]"),)
    assert supports_vision("anthropic", "claude-sonnet-4-5")
    assert not supports_vision("openai", "gpt-3.5-turbo")


async def test_reply_returns_text_usage_and_warnings() -> None:
    session, fake = session_with("Hi Alice, good to see you.")
    turns = [human("old " * 400, message_id=1), human("hello maya", message_id=2)]
    reply = await session.reply(MAYA.replace(context_budget=300), turns)
    assert reply.text == "Hi Alice, good to see you."
    assert reply.usage.output_tokens > 0
    assert reply.omitted == 1
    assert reply.warnings == ("1 older message left out to fit the context budget.",)
    assert fake.requests[-1].messages[-1].text == "Alice: hello maya"


async def test_stream_yields_deltas_and_strips_the_mates_own_prefix() -> None:
    session, _ = session_with(["**Maya**:", " Sure", ", here", " it is."])
    stream = session.stream(MAYA, [human("help?")])
    deltas = [delta async for delta in stream]
    assert "".join(deltas) == "Sure, here it is."
    assert stream.reply is not None and stream.reply.text == "Sure, here it is."


async def test_a_reply_that_only_mentions_the_name_later_is_untouched() -> None:
    session, _ = session_with(["I think Maya: is a fine name."])
    reply = await session.reply(MAYA, [human("hm")])
    assert reply.text == "I think Maya: is a fine name."


async def test_context_too_long_trims_harder_and_retries_once() -> None:
    session, fake = session_with(ContextTooLongError("too long", "openai"), "Fits now.")
    turns = [human(f"turn {i} " + "text " * 30, message_id=i) for i in range(30)]
    reply = await session.reply(MAYA.replace(context_budget=2000), turns)
    assert reply.text == "Fits now."
    first, second = fake.requests
    assert len(second.messages) < len(first.messages)
    assert second.messages[-1] == first.messages[-1]


async def test_context_too_long_twice_reaches_the_caller() -> None:
    session, _ = session_with(
        ContextTooLongError("a", "openai"), ContextTooLongError("b", "openai")
    )
    with pytest.raises(ContextTooLongError):
        await session.reply(MAYA, [human("hi")])


async def test_provider_errors_reach_the_caller_unchanged() -> None:
    session, _ = session_with(RateLimitError("OpenAI is rate limiting.", "openai"))
    with pytest.raises(RateLimitError, match="rate limiting"):
        await session.reply(MAYA, [human("hi")])


async def test_a_provider_that_is_not_configured_is_a_missing_key() -> None:
    session = Session({}, models={"openai": "gpt-4o-mini", "anthropic": "claude-x"})
    with pytest.raises(MissingKeyError, match="No openai provider"):
        await session.reply(MAYA, [human("hi")])


def test_a_long_history_gives_the_same_request_as_its_tail() -> None:
    session, _ = session_with()
    history = [human(f"m{i} " + "w " * 40, message_id=i) for i in range(10_000)]
    full = session.build(MAYA, history)
    kept = len(full.request.messages)
    assert kept < 1000
    tail = session.build(MAYA, history[-(kept + 10) :])
    assert tail.request == full.request
    assert full.omitted == 10_000 - kept


# --- the newest turn is bounded too ------------------------------------------------------------

TRUNCATED = "[… message truncated to fit the context budget]"


def test_the_newest_turn_is_truncated_to_the_budget_with_a_note() -> None:
    session, _ = session_with()
    small = MAYA.replace(context_budget=1000)
    attachments = "".join(f"\n\n[notes{i}.txt]\n" + "lorem ipsum dolor " * 900 for i in range(10))
    turns = [human("older", message_id=1), human("read these" + attachments, message_id=2)]
    prompt = session.build(small, turns)
    counter = session.counters.for_model("openai", "gpt-4o")
    (only,) = prompt.request.messages
    assert only.text.startswith("Alice: read these\n\n[notes0.txt]\nlorem ipsum")
    assert only.text.endswith("\n" + TRUNCATED)
    assert prompt.omitted == 1 and prompt.truncated
    sent = counter.count_message(small.system_prompt) + 3 + counter.count_message(only.text)
    assert prompt.tokens == sent <= 1000
    assert sent > 900  # what the budget allows is used, not thrown away
    # The note reaches the people too, through the reply's warnings.
    assert Reply(text="", usage=Usage(), model="m", omitted=1, truncated=True).warnings == (
        "1 older message left out to fit the context budget.",
        "The newest message was cut to fit the context budget.",
    )


def test_a_newest_turn_that_fits_is_untouched() -> None:
    session, _ = session_with()
    words = " ".join(["word"] * 500)
    prompt = session.build(MAYA.replace(context_budget=1000), [human(words)])
    assert prompt.request.messages == (Message("user", "Alice: " + words),)
    assert not prompt.truncated


def test_the_newest_turn_keeps_a_floor_when_the_prompt_fills_the_budget() -> None:
    session, _ = session_with()
    wordy = MAYA.replace(system_prompt="rule " * 2000, context_budget=1000)
    prompt = session.build(wordy, [human("tell me " * 3000)])
    (only,) = prompt.request.messages
    counter = session.counters.for_model("openai", "gpt-4o")
    assert only.text.startswith("Alice: tell me") and only.text.endswith(TRUNCATED)
    assert NEWEST_TURN_FLOOR - 10 <= counter.count_message(only.text) <= NEWEST_TURN_FLOOR


def test_images_of_a_newest_turn_over_the_budget_are_left_out_with_a_note() -> None:
    session, _ = session_with()
    images = tuple(f"https://cdn.example/{i}.png" for i in range(10))
    prompt = session.build(
        MAYA.replace(context_budget=2000), [Turn(1, "Alice", "look", images=images)]
    )
    (only,) = prompt.request.messages
    assert 0 < len(only.images) < 10
    assert (
        only.text
        == f"Alice: look\n[{10 - len(only.images)} image(s) left out to fit the context budget]"
    )
    assert prompt.tokens <= 2000


async def test_a_retry_after_context_too_long_cuts_the_newest_turn_further() -> None:
    session, fake = session_with(ContextTooLongError("too long", "openai"), "Fits now.")
    await session.reply(MAYA.replace(context_budget=4000), [human("essay " * 10_000)])
    first, second = fake.requests
    assert len(second.messages[-1].text) < len(first.messages[-1].text) / 1.5
    assert second.messages[-1].text.endswith(TRUNCATED)


# --- nothing to answer -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "turns",
    [
        [],
        [human("")],
        [human("hi"), said_by(MAYA, "Hello!")],
        [human("hi"), said_by(MAYA, "Hello!"), human(""), human("   ")],
    ],
)
async def test_a_request_never_ends_with_the_mates_own_turn(turns: list[Turn]) -> None:
    session, fake = session_with("the same answer again")
    assert not awaits_answer(MAYA, turns)
    with pytest.raises(NothingToAnswerError):
        session.build(MAYA, turns)
    with pytest.raises(NothingToAnswerError):
        await session.reply(MAYA, turns)
    assert fake.requests == []


def test_a_turn_after_the_mates_own_awaits_an_answer() -> None:
    assert awaits_answer(MAYA, [said_by(MAYA, "Hello!"), human("[sticker: wave]")])
    assert awaits_answer(MAYA, [human("hi"), said_by(MERLIN, "Greetings.")])
    assert awaits_answer(MAYA, [said_by(MAYA, "Hi"), Turn(1, "Alice", "", images=("u",))])


# --- what a turn carries besides its own words; images that may have expired -------------------

NOW = datetime(2026, 4, 18, 12, 0, tzinfo=timezone.utc)


def test_attached_text_follows_the_turns_own_words() -> None:
    session, _ = session_with()
    turn = Turn(1, "Alice", "see the file", attached="\n\n[notes.txt]\nline one")
    sticker = Turn(2, "Sam", "", attached="[sticker: wave]")
    messages = session.build(MAYA, [turn, sticker]).request.messages
    assert [m.text for m in messages] == [
        "Alice: see the file\n\n[notes.txt]\nline one",
        "Sam: [sticker: wave]",
    ]


def test_images_go_only_from_turns_within_an_hour_of_the_newest() -> None:
    session, _ = session_with()
    cdn = "https://cdn.discordapp.com/attachments/1/2/{}?ex=65f&is=65e&hm=ab"
    turns = [
        Turn(
            1,
            "Alice",
            "yesterday's",
            time=NOW - timedelta(hours=20),
            images=(cdn.format("old.png"),),
        ),
        Turn(
            1, "Alice", "earlier", time=NOW - timedelta(minutes=50), images=(cdn.format("new.png"),)
        ),
        human("what do you see?"),  # no time: the newest turn's time is the last known one
        Turn(2, "Bob", "and this", time=NOW, images=(cdn.format("a%20b.webp"),)),
    ]
    messages = session.build(MAYA, turns).request.messages
    assert messages[0] == Message("user", "Alice: yesterday's\n[image: old.png]")
    assert messages[1] == Message("user", "Alice: earlier", (cdn.format("new.png"),))
    assert messages[3] == Message("user", "Bob: and this", (cdn.format("a%20b.webp"),))


def test_a_speakers_name_is_cleaned_once_not_on_every_turn(monkeypatch):
    # Every build renders each turn in the window; the speaker's prefix ("Alice: ") is
    # the same turn after turn, so its cleaning (a walk over the name's characters) is
    # done once per name, not once per message per turn.
    import loopflow.io.discord as discord_text

    cleaned: list[str] = []
    real = discord_text.clean_display_name

    def counting(name: str, *args: object, **kwargs: object) -> str:
        cleaned.append(name)
        return real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(discord_text, "clean_display_name", counting)
    name = "Zoë the bench speaker"
    turns = [human(f"message {i}", name) for i in range(20)]
    session = Session({"openai": FakeProvider()})
    first = session.build(MAYA, turns)
    second = session.build(MAYA, turns)
    assert first.request.messages[0].text == f"{name}: message 0"  # the prefix as before
    assert first.request == second.request
    assert cleaned.count(name) <= 1
