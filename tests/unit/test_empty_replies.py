"""An empty completion is retried once, then reported; it is never an empty reply."""

from __future__ import annotations

import pytest

from loopflow.errors import ContextTooLongError, EmptyReplyError, ProviderError
from loopflow.io.session import Session, Turn
from loopflow.mates import Mate
from loopflow.providers.base import Usage
from loopflow.providers.fake import FakeProvider

MAYA = Mate(name="maya", display_name="Maya", system_prompt="You are Maya.", model="gpt-4o")
HELLO = [Turn(speaker_id=1, display_name="Alice", text="hello")]


def session_with(*replies: object) -> tuple[Session, FakeProvider]:
    fake = FakeProvider("openai", replies=list(replies))
    return Session({"openai": fake}, models={"openai": "gpt-4o", "anthropic": "c"}), fake


@pytest.mark.parametrize("empty", ["", "   \n ", [], ["", " ", "\n"]])
@pytest.mark.parametrize("stream", [True, False])
async def test_an_empty_completion_is_retried_once(empty: object, stream: bool) -> None:
    session, fake = session_with(empty, "Hi Alice!")
    replying = session.stream(MAYA, HELLO, stream=stream)
    deltas = [delta async for delta in replying]
    assert "".join(deltas) == "Hi Alice!"
    assert replying.reply is not None and replying.reply.text == "Hi Alice!"
    assert len(fake.requests) == 2 and fake.requests[0] == fake.requests[1]


async def test_empty_twice_is_an_empty_reply_error_and_keeps_the_usage() -> None:
    session, fake = session_with("", " ")
    replying = session.stream(MAYA, HELLO)
    with pytest.raises(EmptyReplyError) as caught:
        async for delta in replying:
            raise AssertionError(f"nothing may be shown, got {delta!r}")
    assert isinstance(caught.value, ProviderError)
    assert str(caught.value) == "Maya had nothing to say."
    assert caught.value.provider == "openai"
    assert len(fake.requests) == 2
    # Both attempts were billed: the caller can still count them.
    assert replying.reply is not None and replying.reply.text == ""
    assert replying.reply.usage == Usage(2 * ((len("You are Maya.") + len("Alice: hello")) // 4), 0)


async def test_a_reply_that_is_only_the_mates_own_name_is_empty() -> None:
    session, fake = session_with("Maya:", "Maya: ")
    with pytest.raises(EmptyReplyError):
        await session.reply(MAYA, HELLO)
    assert len(fake.requests) == 2


async def test_a_failure_after_an_empty_completion_reaches_the_caller() -> None:
    session, _ = session_with("", ProviderError("nope", "openai"))
    with pytest.raises(ProviderError, match="nope"):
        await session.reply(MAYA, HELLO)


async def test_a_context_too_long_on_the_empty_retry_is_not_halved_again() -> None:
    # Halving is for the first request only: the retry of an empty completion sends the
    # same prompt, and a context-too-long then is the caller's to report.
    too_long = ContextTooLongError("too long", "openai")
    session, fake = session_with("", too_long, "Hi Alice!")
    with pytest.raises(ContextTooLongError):
        await session.reply(MAYA, HELLO)
    assert len(fake.requests) == 2 and fake.requests[0] == fake.requests[1]
