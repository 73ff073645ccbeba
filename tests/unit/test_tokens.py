"""Offline token counting: the real BPE for OpenAI models, an estimate elsewhere."""

from __future__ import annotations

import socket

import pytest

from loopflow.io.tokens import (
    COUNT_OVERHEAD,
    MESSAGE_OVERHEAD,
    TokenCounter,
    TokenCounters,
    count_cache_bytes,
    encoding_name,
)

# Reference counts from OpenAI's tokenizers for these exact strings.
HELLO = "Hello, world! Maya: how are you?"


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        ("openai", "gpt-4o-mini", ("o200k_base", 1.0)),
        ("openai", "gpt-4.1", ("o200k_base", 1.0)),
        ("openai", "gpt-5-mini", ("o200k_base", 1.0)),
        ("openai", "o3-mini", ("o200k_base", 1.0)),
        ("openai", "openai/gpt-4o", ("o200k_base", 1.0)),
        ("openai", "gpt-4-turbo", ("cl100k_base", 1.0)),
        ("openai", "gpt-3.5-turbo", ("cl100k_base", 1.0)),
        ("openai", "llama3.1:8b", ("o200k_base", 1.2)),
        ("anthropic", "claude-sonnet-4-5", ("o200k_base", 1.3)),
    ],
)
def test_encoding_choice(provider: str, model: str, expected: tuple[str, float]) -> None:
    assert encoding_name(provider, model) == expected


def test_counts_match_the_real_tokenizers_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("token counting must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    o200k = TokenCounter("o200k_base")
    cl100k = TokenCounter("cl100k_base")
    assert o200k.count(HELLO) == 10
    assert cl100k.count(HELLO) == 10
    assert o200k.count("") == 0
    # Special-token text is counted as ordinary text, never rejected.
    assert o200k.count("<|endoftext|>") > 1
    assert o200k.exact


def test_estimates_round_up_and_are_marked_inexact() -> None:
    exact = TokenCounter("o200k_base").count(HELLO)
    estimate = TokenCounter("o200k_base", 1.3)
    assert estimate.count(HELLO) == 13 == -(-exact * 13 // 10)
    assert not estimate.exact


def test_message_cost_includes_framing_and_images() -> None:
    counter = TokenCounter()
    assert counter.count_message(HELLO) == 10 + MESSAGE_OVERHEAD
    assert counter.count_message(HELLO, images=2) > counter.count_message(HELLO) + 1000


def test_counts_are_cached_and_bounded_by_bytes() -> None:
    entry = count_cache_bytes("b" * 100)
    counter = TokenCounter(cache_bytes=2 * entry)
    for text in ("a" * 100, "b" * 100, "c" * 100):
        counter.count(text)
    assert list(counter._cache) == ["b" * 100, "c" * 100]
    counter.count("b" * 100)
    assert list(counter._cache) == ["c" * 100, "b" * 100]
    counter.count("long " * 1000)  # heavier than the whole cache: counted, not kept
    assert "long " * 1000 not in counter._cache
    assert counter._cache.weight <= 2 * entry


def test_a_cached_counts_bytes_are_its_text_and_a_measured_overhead() -> None:
    assert count_cache_bytes("x" * 5000) - count_cache_bytes("x") == 4999
    assert count_cache_bytes("x") >= COUNT_OVERHEAD


def test_counters_are_shared_per_encoding() -> None:
    counters = TokenCounters()
    assert counters.for_model("openai", "gpt-4o") is counters.for_model("openai", "gpt-4.1-mini")
    assert counters.for_model("openai", "gpt-4o") is not counters.for_model("anthropic", "claude-x")


@pytest.mark.parametrize("factor", [1.0, 1.3])
@pytest.mark.parametrize(
    "text", ["word " * 3000, "日本語のテキスト" * 800, "🧑‍🚀🚀" * 900, "x" * 20_000]
)
def test_truncate_keeps_the_longest_prefix_within_the_count(factor: float, text: str) -> None:
    counter = TokenCounter("o200k_base", factor)
    for tokens in (0, 1, 50, 777):
        cut = counter.truncate(text, tokens)
        assert text.startswith(cut)
        assert counter.count(cut) <= tokens
        assert counter.count(cut) >= tokens - 4 * factor - 1  # nothing wasted
    assert counter.truncate(text, counter.count(text)) == text
