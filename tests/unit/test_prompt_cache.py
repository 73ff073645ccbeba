"""Prompt caching on the wire: Anthropic's breakpoints, OpenAI's prompt_cache_key."""

from __future__ import annotations

from typing import Any

import pytest

from loopflow.providers.anthropic import (
    EPHEMERAL,
    LEADING_USER_PLACEHOLDER,
    MAX_BREAKPOINTS,
    anthropic_body_parts,
)
from loopflow.providers.base import Message, Request
from loopflow.providers.openai import cache_parameters

U, A = "user", "assistant"


def request(*roles: str, **fields: Any) -> Request:
    messages = tuple(Message(role, f"{role} {i}") for i, role in enumerate(roles))  # type: ignore[arg-type]
    return Request(model="claude-sonnet-4-5", system="You are Merlin.", messages=messages, **fields)


def marked(blocks: Any) -> bool:
    return isinstance(blocks, list) and blocks[-1].get("cache_control") == EPHEMERAL


def breakpoints(wire: list[dict[str, Any]]) -> list[int]:
    return [i for i, turn in enumerate(wire) if marked(turn["content"])]


# ---------------------------------------------------------------- the stable prefix


@pytest.mark.parametrize(
    ("roles", "end"),
    [
        ((U,), -1),
        ((A, U), 0),
        ((U, A, U), 1),
        ((U, A, U, U, U), 1),  # several people spoke since the mate's last reply
        ((U, A, U, A, U), 3),
    ],
)
def test_the_stable_prefix_ends_before_the_newest_turns(roles: tuple[str, ...], end: int) -> None:
    assert request(*roles).stable_end() == end


def test_a_caller_may_say_where_the_stable_prefix_ends() -> None:
    assert request(U, A, U, A, U, cache_up_to=2).stable_end() == 2
    assert request(U, A, U, cache_up_to=99).stable_end() == 2  # clamped
    assert request(U, A, U, cache_up_to=-1).stable_end() == -1  # no stable prefix


# ---------------------------------------------------------------- Anthropic


def test_the_system_prompt_is_one_cached_text_block() -> None:
    system, _ = anthropic_body_parts(request(U))
    assert system == [{"type": "text", "text": "You are Merlin.", "cache_control": EPHEMERAL}]


def test_no_system_block_for_an_empty_system_prompt() -> None:
    system, _ = anthropic_body_parts(Request(model="c", system="", messages=(Message(U, "hi"),)))
    assert system is None


def test_breakpoints_on_the_stable_end_and_the_newest_turn() -> None:
    _, wire = anthropic_body_parts(request(U, A, U, A, U))
    assert breakpoints(wire) == [3, 4]
    mark = {"cache_control": EPHEMERAL}
    assert wire[3]["content"] == [{"type": "text", "text": "assistant 3", **mark}]
    assert wire[0]["content"] == "user 0"  # unmarked turns stay plain strings


def test_a_first_turn_has_only_the_newest_breakpoint() -> None:
    _, wire = anthropic_body_parts(request(U))
    assert breakpoints(wire) == [0]


def test_the_stable_breakpoint_skips_a_turn_that_merges_newer_messages() -> None:
    # Messages 3 and 4 (both user) merge into one wire turn: marking it would cache text
    # the next request may not start with. The turn before it is marked instead.
    _, wire = anthropic_body_parts(request(U, A, U, U, U, cache_up_to=3))
    assert len(wire) == 3 and breakpoints(wire) == [1, 2]


def test_an_explicit_stable_end_is_marked() -> None:
    _, wire = anthropic_body_parts(request(U, A, U, A, U, A, U, cache_up_to=1))
    assert breakpoints(wire) == [1, 6]


def test_a_leading_assistant_turn_keeps_its_placeholder_and_its_mark() -> None:
    _, wire = anthropic_body_parts(request(A, U))
    assert wire[0]["content"] == LEADING_USER_PLACEHOLDER
    assert breakpoints(wire) == [1, 2]


def test_an_image_turn_marks_its_last_block() -> None:
    messages = (
        Message(U, "look", images=("https://cdn.example/cat.png",)),
        Message(A, "A cat."),
        Message(U, "and this?", images=("https://cdn.example/dog.png",)),
    )
    _, wire = anthropic_body_parts(Request(model="c", system="s", messages=messages))
    last = wire[-1]["content"]
    assert [block["type"] for block in last] == ["image", "text"]
    assert last[-1]["cache_control"] == EPHEMERAL and "cache_control" not in last[0]
    assert breakpoints(wire) == [1, 2]


def test_never_more_breakpoints_than_the_api_allows() -> None:
    for roles in [(U,), (U, A, U), (A, U, A, U, U), (U, A) * 20 + (U,)]:
        system, wire = anthropic_body_parts(request(*roles))
        total = int(marked(system)) + len(breakpoints(wire))
        assert total <= MAX_BREAKPOINTS == 4


# ---------------------------------------------------------------- OpenAI


def test_prompt_cache_key_goes_to_openais_own_api_only() -> None:
    keyed = Request(model="gpt-5-mini", system="s", messages=(), cache_key="1:2:maya")
    sent = cache_parameters(keyed, "api.openai.com")
    assert set(sent) == {"prompt_cache_key"}
    assert "1:2:maya" not in sent["prompt_cache_key"]  # Discord ids stay at home
    assert len(sent["prompt_cache_key"]) <= 64
    assert cache_parameters(keyed, "127.0.0.1") == {}
    assert cache_parameters(keyed, "openrouter.ai") == {}
    assert cache_parameters(keyed, "localhost") == {}


def test_prompt_cache_key_is_stable_per_conversation() -> None:
    def key(name: str) -> str:
        keyed = Request(model="gpt-5", system="s", messages=(), cache_key=name)
        return str(cache_parameters(keyed, "api.openai.com")["prompt_cache_key"])

    assert key("1:2:maya") == key("1:2:maya") != key("1:3:maya")


def test_no_prompt_cache_key_without_a_conversation() -> None:
    plain = Request(model="gpt-5-mini", system="s", messages=())
    assert cache_parameters(plain, "api.openai.com") == {}
