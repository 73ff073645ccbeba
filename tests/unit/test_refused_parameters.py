"""Refused parameters: read from the provider's words, remembered per model, bounded."""

from __future__ import annotations

import pytest

from loopflow.providers.parameters import (
    RefusedParameters,
    is_refusal,
    named_parameter,
    suggested_replacement,
)

SENT = ("model", "messages", "max_tokens", "temperature", "stream_options")


@pytest.mark.parametrize(
    ("message", "parameter", "replacement"),
    [
        (
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "max_tokens",
            "max_completion_tokens",
        ),
        (
            "Unsupported value: 'temperature' does not support 0.7 with this model. "
            "Only the default (1) value is supported.",
            "temperature",
            "",
        ),
        (
            "litellm.UnsupportedParamsError: openai does not support parameters: "
            "['temperature'], for model=o3-mini. To drop these, set `litellm.drop_params=True`.",
            "temperature",
            "",
        ),
        ("`temperature` and `top_p` cannot both be specified for this model.", "temperature", ""),
        ("stream_options: Extra inputs are not permitted", "stream_options", ""),
        # Claude Opus 4.7+, Sonnet 5 and later (seen in the field from 2026-06).
        ("`temperature` is deprecated for this model.", "temperature", ""),
    ],
)
def test_refusals_in_the_wordings_of_the_field(
    message: str, parameter: str, replacement: str
) -> None:
    assert is_refusal(message)
    assert named_parameter(message, SENT[2:]) == parameter
    assert suggested_replacement(message) == replacement


@pytest.mark.parametrize(
    "message",
    [
        "temperature: Input should be less than or equal to 1",
        "The model `gpt-nope` does not exist or you do not have access to it.",
        "Invalid value for 'content': expected a string, got null.",
        "The model claude-2.0 is deprecated and has been retired.",
    ],
)
def test_other_errors_are_not_refusals(message: str) -> None:
    assert not is_refusal(message)


def test_a_longer_name_is_not_mistaken_for_a_shorter_one() -> None:
    assert named_parameter("Use 'max_completion_tokens' please", ["max_tokens"]) == ""
    assert named_parameter("a.temperature is odd", ["temperature"]) == ""


def test_refusals_are_applied_per_model() -> None:
    refused = RefusedParameters()
    refused.remember("thinker", "max_tokens", "max_completion_tokens")
    refused.remember("thinker", "temperature")
    params = {"model": "thinker", "max_tokens": 9, "temperature": 0.5}
    assert refused.apply("thinker", params) == {"model": "thinker", "max_completion_tokens": 9}
    assert refused.apply("other", params) == params
    assert params["max_tokens"] == 9  # the caller's dict is left alone


def test_the_memory_is_bounded_and_keeps_the_models_in_use() -> None:
    refused = RefusedParameters(size=3)
    for model in ("a", "b", "c"):
        refused.remember(model, "temperature")
    refused.apply("a", {"temperature": 1})  # "a" is in use: "b" is now the oldest
    refused.remember("d", "temperature")
    assert len(refused) == 3
    assert refused.apply("b", {"temperature": 1}) == {"temperature": 1}
    assert refused.apply("a", {"temperature": 1}) == {}
