"""The one table of provider and model knowledge, and the rules read from it."""

from __future__ import annotations

import importlib

import pytest

from loopflow import models
from loopflow.errors import LoopflowError, MateError
from loopflow.mates import Mate
from loopflow.models import (
    PROVIDER_NAMES,
    accepts_temperature,
    default_models,
    provider_for_model,
    provider_spec,
    request_parameters,
    supports_vision,
    temperature_range,
    token_encoding,
    validate_model,
)


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_every_provider_entry_is_complete(name: str) -> None:
    spec = provider_spec(name)
    assert spec.name == name and spec.title
    assert spec.key_variables and all(v.isupper() for v in spec.key_variables)
    assert spec.base_url_variable.endswith("_BASE_URL")
    assert spec.model_variable == f"LOOPFLOW_{name.upper()}_MODEL"
    module, _, cls = spec.adapter.partition(":")
    assert getattr(importlib.import_module(module), cls).name == name
    assert validate_model(spec.default_model) == spec.default_model
    # The default model is a family the table knows, so it is sent what it accepts.
    assert models.family_of(name, spec.default_model) is not None
    low, high = spec.temperature_range
    assert 0 <= low < high <= 2


def test_an_unknown_provider_is_a_clear_error() -> None:
    with pytest.raises(MateError, match="Unknown provider 'gemini': choose one of openai"):
        provider_spec("gemini")


def test_default_models_are_current_general_models() -> None:
    # As of 2026-11-30 (see the table's comment): OpenAI's "go-to model for everyday work"
    # and Anthropic's "best combination of speed and intelligence".
    assert default_models({}) == {"openai": "gpt-6.2-sol", "anthropic": "claude-sonnet-5-5"}


@pytest.mark.parametrize(
    ("provider", "model", "host", "limit", "temperature"),
    [
        # Reasoning families get what they accept wherever they are served.
        ("openai", "o3-mini", "api.openai.com", "max_completion_tokens", False),
        ("openai", "o3-mini", "my-proxy.example", "max_completion_tokens", False),
        ("openai", "o1", "localhost", "max_completion_tokens", False),
        ("openai", "o4-mini-2025-04-16", "x.openai.azure.com", "max_completion_tokens", False),
        ("openai", "gpt-5-mini", "litellm.internal", "max_completion_tokens", False),
        ("openai", "gpt-5.1", "api.openai.com", "max_completion_tokens", False),
        ("openai", "openai/gpt-5", "openrouter.ai", "max_completion_tokens", False),
        # Others: the new field on OpenAI's own API, the widely understood one elsewhere.
        ("openai", "gpt-4o-mini", "api.openai.com", "max_completion_tokens", True),
        ("openai", "gpt-4o-mini", "localhost", "max_tokens", True),
        ("openai", "llama3.1:8b", "localhost", "max_tokens", True),
        ("openai", "omni-moderation-latest", "localhost", "max_tokens", True),
        ("anthropic", "claude-sonnet-4-5", "api.anthropic.com", "max_tokens", True),
        # Today's OpenAI models reason by default (effort medium): no temperature, and
        # max_completion_tokens (GPT-6 refuses max_tokens), on any host.
        ("openai", "gpt-6.2-sol", "api.openai.com", "max_completion_tokens", False),
        ("openai", "gpt-6.2-astra", "localhost", "max_completion_tokens", False),
        ("openai", "gpt-6-luna", "litellm.internal", "max_completion_tokens", False),
        ("openai", "gpt-6.1-sol-2026-09-29", "api.openai.com", "max_completion_tokens", False),
        ("openai", "gpt-5.5", "api.openai.com", "max_completion_tokens", False),
        # Claude Opus 4.7 and later, and every Claude 5.x model, answer a temperature with
        # "`temperature` is deprecated for this model." and think within max_tokens.
        ("anthropic", "claude-sonnet-5-5", "api.anthropic.com", "max_tokens", False),
        ("anthropic", "claude-sonnet-5", "api.anthropic.com", "max_tokens", False),
        ("anthropic", "claude-haiku-5-5", "api.anthropic.com", "max_tokens", False),
        ("anthropic", "claude-opus-5-5", "api.anthropic.com", "max_tokens", False),
        ("anthropic", "claude-fable-5-2", "api.anthropic.com", "max_tokens", False),
        ("anthropic", "claude-mythos-5-1", "api.anthropic.com", "max_tokens", False),
        ("anthropic", "claude-opus-4-8", "api.anthropic.com", "max_tokens", False),
        ("anthropic", "claude-opus-4-7", "api.anthropic.com", "max_tokens", False),
        # Older ones still take it.
        ("anthropic", "claude-opus-4-6", "api.anthropic.com", "max_tokens", True),
        ("anthropic", "claude-sonnet-4-6", "api.anthropic.com", "max_tokens", True),
        ("anthropic", "claude-haiku-4-5-20251001", "api.anthropic.com", "max_tokens", True),
    ],
)
def test_request_parameters(
    provider: str, model: str, host: str, limit: str, temperature: bool
) -> None:
    params = request_parameters(provider, model, host)
    assert params.token_limit == limit
    assert params.temperature is temperature
    assert accepts_temperature(provider, model) is temperature
    # A reasoning model's cap covers its reasoning too: it gets room beyond the reply.
    assert (params.reasoning_headroom > 0) is (not temperature)


@pytest.mark.parametrize(
    ("provider", "model", "vision"),
    [
        ("openai", "gpt-4o", True),
        ("openai", "gpt-4o-mini", True),
        ("openai", "openai/gpt-4.1", True),
        ("openai", "gpt-5-mini", True),
        ("openai", "o3", True),
        ("openai", "o3-mini", False),
        ("openai", "o1-mini", False),
        ("openai", "gpt-3.5-turbo", False),
        ("openai", "llama3.1:8b", False),
        ("anthropic", "claude-sonnet-4-5", True),
        ("anthropic", "claude-3-5-haiku-latest", True),
        ("anthropic", "claude-2.1", False),
        ("openai", "gpt-6.2-sol", True),
        ("openai", "gpt-6-luna", True),
        ("anthropic", "claude-sonnet-5-5", True),
        ("anthropic", "claude-fable-5-2", True),
    ],
)
def test_vision_families(provider: str, model: str, vision: bool) -> None:
    assert supports_vision(provider, model) is vision


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o-mini", ("o200k_base", 1.0)),
        ("gpt-4.1-mini", ("o200k_base", 1.0)),
        ("gpt-4-turbo", ("cl100k_base", 1.0)),
        ("gpt-4", ("cl100k_base", 1.0)),
        ("gpt-35-turbo", ("cl100k_base", 1.0)),
        ("o4-mini", ("o200k_base", 1.0)),
        ("gpt-oss-20b", ("o200k_base", 1.0)),
        ("chatgpt-4o-latest", ("o200k_base", 1.0)),
        ("deepseek-r1:14b", ("o200k_base", 1.2)),
        # GPT-6's tokenizer is not published: an estimate, as for any unknown model.
        ("gpt-6.2-sol", ("o200k_base", 1.2)),
    ],
)
def test_token_encodings_come_from_the_families(model: str, expected: tuple[str, float]) -> None:
    assert token_encoding("openai", model) == expected


@pytest.mark.parametrize(
    ("model", "factor"),
    [
        ("claude-haiku-4-5", 1.3),
        ("claude-opus-4-6", 1.3),
        # "the same newer tokenizer as Claude 4.7 and later models, so the same text counts
        # as approximately 30% more tokens than on Claude Haiku 4.5" (Haiku 5.5's page).
        ("claude-opus-4-7", 1.7),
        ("claude-sonnet-5-5", 1.7),
        ("claude-haiku-5-5", 1.7),
    ],
)
def test_newer_claude_models_count_more_tokens(model: str, factor: float) -> None:
    assert token_encoding("anthropic", model) == ("o200k_base", factor)


def test_the_provider_a_model_implies() -> None:
    assert provider_for_model("claude-opus-4-1") == "anthropic"
    assert provider_for_model("Claude-3-haiku") == "anthropic"
    assert provider_for_model("gpt-5") == "openai"
    # OpenRouter is OpenAI-compatible, whatever model it routes to.
    assert provider_for_model("anthropic/claude-sonnet-4.5") == "openai"


def test_temperature_ranges_are_per_provider() -> None:
    assert temperature_range("openai") == (0.0, 2.0)
    assert temperature_range("anthropic") == (0.0, 1.0)


@pytest.mark.parametrize(
    "model",
    [
        "gpt-5-mini",
        "llama3.1:8b",
        "hf.co/bartowski/Qwen2.5-7B-Instruct-GGUF:Q4_K_M",
        "meta-llama/llama-3.1-8b-instruct:free",
        "claude-3-5-sonnet@20240620",
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "x" * 100,
        "a+b",
    ],
)
def test_valid_model_names(model: str) -> None:
    assert validate_model(model) == model


@pytest.mark.parametrize(
    "model", ["", "two words", "x" * 101, "gpt-4o\n", "gpt`4", "<@123>", "modèle", "a,b", "a;b"]
)
def test_bad_model_names_are_refused_with_the_rule(model: str) -> None:
    with pytest.raises(MateError, match=r"is not a model name: use 1 to 100 characters"):
        validate_model(model)


def test_default_models_from_the_environment_are_validated() -> None:
    assert default_models({"LOOPFLOW_OPENAI_MODEL": " gpt-4.1 "})["openai"] == "gpt-4.1"
    assert default_models({"LOOPFLOW_OPENAI_MODEL": "   "})["openai"] == "gpt-6.2-sol"
    overridden = default_models({"LOOPFLOW_ANTHROPIC_MODEL": "claude-opus-4-1"})
    assert overridden == {"openai": "gpt-6.2-sol", "anthropic": "claude-opus-4-1"}
    with pytest.raises(LoopflowError, match="LOOPFLOW_ANTHROPIC_MODEL") as caught:
        default_models({"LOOPFLOW_ANTHROPIC_MODEL": "two words"})
    assert "'two words' is not a model name" in str(caught.value)


# --- the table applied to mates ------------------------------------------------------


def mate(**changes: object) -> Mate:
    fields: dict[str, object] = {"name": "merlin", "display_name": "Merlin", "system_prompt": "Hi."}
    fields.update(changes)
    return Mate(**fields)  # type: ignore[arg-type]


def test_a_mates_temperature_is_checked_against_its_provider() -> None:
    assert mate(provider="openai", temperature=1.5).temperature == 1.5
    assert mate(provider="anthropic", temperature=1.0).temperature == 1.0
    with pytest.raises(MateError, match="temperature must be between 0 and 1 for Anthropic"):
        mate(provider="anthropic", temperature=1.5)
    with pytest.raises(MateError, match="temperature must be between 0 and 2 for OpenAI"):
        mate(provider="openai", temperature=2.5)


def test_moving_to_a_provider_that_refuses_the_temperature_says_to_lower_it_first() -> None:
    hot = mate(provider="openai", temperature=1.5, model="gpt-4.1")
    with pytest.raises(MateError) as caught:
        hot.replace(provider="anthropic", model="claude-sonnet-4-5")
    assert str(caught.value) == (
        "Anthropic takes a temperature from 0 to 1, and Merlin's is 1.5: "
        "lower it first, or set it back to the default."
    )
    assert hot.replace(temperature=None).replace(provider="anthropic").temperature is None
    assert hot.replace(temperature=0.9, provider="anthropic").provider == "anthropic"


def test_a_stored_temperature_the_provider_refuses_is_clamped_not_lost() -> None:
    stored = {**mate(provider="anthropic").to_dict(), "temperature": 1.5}
    assert Mate.from_dict(stored).temperature == 1.0


@pytest.mark.parametrize("model", ["two words", "x" * 101, "bad`name"])
def test_a_mates_model_follows_the_rule(model: str) -> None:
    with pytest.raises(MateError, match="is not a model name"):
        mate(model=model)
