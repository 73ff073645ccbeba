"""One table of what loopflow knows about providers and their models.

Each provider is one :class:`ProviderSpec`: its title, the environment variables of its
key and base URL, the adapter class that speaks its API, its temperature range, its
default model, and its model families (:class:`Family`: vision, how tokens are counted,
which parameters a reasoning model takes, whether replies start inside a think block).
Everything else asks this module: mates (validation), the session (vision), token
counting, the adapters (request parameters), the CLI, the launcher and the cog.

Adding a provider is one entry in :data:`PROVIDERS` plus one adapter module.

List prices live in :mod:`loopflow.pricing`.

A family matches a model by the name's last path segment (``openai/gpt-4o`` is
``gpt-4o``), lower-cased: its pattern must match at the start and end at the end of the
name or at a separator (``-``, ``.``, ``:``, ``@``, ``_``); the longest match among a
provider's families wins, so ``gpt-4.1-mini`` is ``gpt-4.1``, not ``gpt-4``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from loopflow.errors import LoopflowError, MateError

#: A model name: what every provider's names use (``gpt-5-mini``, ``llama3.1:8b``,
#: ``meta-llama/llama-3.1-8b-instruct:free``, ``claude-3-5-sonnet@20240620``), and
#: nothing that breaks a request or a Discord message (spaces, quotes, backticks).
MODEL_PATTERN = re.compile(r"[A-Za-z0-9._:/@+-]{1,100}")
MODEL_RULE = "use 1 to 100 characters of A-Z, a-z, 0-9 and . _ : / @ + -"

#: Extra output tokens a reasoning model may spend thinking: its ``max_completion_tokens``
#: caps reasoning and reply together, so a mate's reply length alone would leave many
#: replies empty (the reasoning used it all up).
REASONING_HEADROOM = 4096


@dataclass(frozen=True)
class Family:
    """Models sharing what loopflow needs to know (see the module docstring for matching).

    ``encoding`` is the exact BPE encoding to count tokens with, or empty for an estimate:
    an ``o200k_base`` count times ``estimate_factor`` (0: the provider's). ``reasoning``:
    the model thinks before it answers, within its output cap, and takes only its
    default temperature: it is sent the provider's newest cap name (OpenAI's
    ``max_completion_tokens``) with room to think, and no temperature (OpenAI's o-series,
    gpt-5 and gpt-6; Claude Opus 4.7 and later, every Claude 5.x). ``starts_thinking``:
    its chat template opens a ``<think>`` block in the prompt, so the reply may start
    inside one without the opening tag.
    """

    pattern: str
    encoding: str = ""
    vision: bool = False
    reasoning: bool = False
    starts_thinking: bool = False
    estimate_factor: float = 0.0

    @property
    def regex(self) -> re.Pattern[str]:
        """The compiled pattern, anchored at the start and ending at a separator."""
        return _compiled(self.pattern)


@dataclass(frozen=True)
class ProviderSpec:
    """One provider: everything loopflow knows about it, in one place.

    ``key_variables`` are read in order (the first is the one to advise people to set);
    ``adapter`` is ``"module:Class"``, imported on first use. ``token_limits`` are the
    names of the output-token cap: ``(widely understood, newest)``; the newest goes to
    ``official_hosts`` and to reasoning families. ``claims`` matches model names that
    imply this provider (``claude-*``). Unknown models count tokens with
    ``estimate_factor``.
    """

    name: str
    title: str
    key_variables: tuple[str, ...]
    base_url_variable: str
    adapter: str
    default_model: str
    temperature_range: tuple[float, float]
    families: tuple[Family, ...]
    token_limits: tuple[str, str] = ("max_tokens", "max_tokens")
    official_hosts: tuple[str, ...] = ()
    claims: str = ""
    estimate_factor: float = 1.2
    reasoning_headroom: int = REASONING_HEADROOM

    @property
    def model_variable(self) -> str:
        """The environment variable that overrides :attr:`default_model`."""
        return f"LOOPFLOW_{self.name.upper()}_MODEL"


# Default models (checked 2026-11-30 against stored copies of the providers' pages, no
# network here): the providers' general models of the current generation.
# * OpenAI: gpt-6.2-sol, "our go-to model for everyday work" (developers.openai.com/api/
#   docs/models, released 2026-11-17; GPT-6.2 Astra is the flagship for the hardest work,
#   GPT-6 Luna the cost-sensitive one). A reasoning model (effort medium by default): sent
#   max_completion_tokens and no temperature; $2 / $10 per million tokens.
# * Anthropic: claude-sonnet-5-5, "the best combination of speed and intelligence"
#   (platform.claude.com/docs/en/models/overview; the overview starts complex agentic
#   work on Opus 5.5, twice the price, and high-volume work on Haiku 5.5). Adaptive
#   thinking on by default, no temperature; $2 / $10 per million tokens.
# Review them when a provider ships a new general model or retires one; the families
# below follow the providers' model pages and migration guides of the same date.
PROVIDERS: Mapping[str, ProviderSpec] = {
    "openai": ProviderSpec(
        name="openai",
        title="OpenAI",
        key_variables=("OPENAI_API_KEY",),
        base_url_variable="OPENAI_BASE_URL",
        adapter="loopflow.providers.openai:OpenAIProvider",
        default_model="gpt-6.2-sol",
        temperature_range=(0.0, 2.0),
        families=(
            Family(r"gpt-5", "o200k_base", vision=True, reasoning=True),
            # GPT-6 (Astra, Sol, Terra, Luna): reasoning by default, max_tokens refused; a
            # temperature only with reasoning_effort "none", which 6.1 Sol and later refuse.
            # Its tokenizer is not published: counted as an estimate.
            Family(r"gpt-[6-9]", vision=True, reasoning=True),
            Family(r"o\d+", "o200k_base", vision=True, reasoning=True),
            Family(r"o1-mini|o1-preview|o3-mini", "o200k_base", reasoning=True),
            Family(r"gpt-4o|gpt-4\.1|gpt-4\.5|chatgpt-4o", "o200k_base", vision=True),
            Family(r"gpt-oss|chatgpt", "o200k_base"),
            Family(r"gpt-4|gpt-3\.5|gpt-35|text-embedding", "cl100k_base"),
            # Open reasoning models on compatible servers (Ollama, vLLM, LM Studio).
            Family(
                r"deepseek-r1|deepseek-reasoner|qwq|qwen3[\w.-]*-thinking", starts_thinking=True
            ),
        ),
        # OpenAI deprecated max_tokens for max_completion_tokens, which most compatible
        # servers (Ollama, LM Studio, older vLLM) do not understand.
        token_limits=("max_tokens", "max_completion_tokens"),
        official_hosts=("api.openai.com",),
        estimate_factor=1.2,
    ),
    "anthropic": ProviderSpec(
        name="anthropic",
        title="Anthropic",
        key_variables=("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"),
        base_url_variable="ANTHROPIC_BASE_URL",
        adapter="loopflow.providers.anthropic:AnthropicProvider",
        default_model="claude-sonnet-5-5",
        # The Messages API refuses temperatures above 1 (OpenAI's range is 0-2).
        temperature_range=(0.0, 1.0),
        families=(
            Family(r"claude-(?:[3-9]|sonnet|opus|haiku)", vision=True),
            # Claude Opus 4.7 and later and every Claude 5.x model (Fable, Mythos, Opus,
            # Sonnet, Haiku): a temperature is refused ("`temperature` is deprecated for
            # this model."), adaptive thinking is on by default (always, on Fable and Opus
            # 5.5) and counts against max_tokens, and "the same newer tokenizer as Claude
            # 4.7 and later models ... counts approximately 30% more tokens" (platform.
            # claude.com, model pages and migration guide, 2026-11).
            Family(
                r"claude-(?:fable|mythos)"
                r"|claude-(?:opus|sonnet|haiku)-(?:[5-9]|\d{2,}|4-(?:[7-9]|\d{2,}))",
                vision=True,
                reasoning=True,
                estimate_factor=1.7,
            ),
        ),
        claims=r"claude",
        # Claude's tokenizer yields about 20-30% more tokens than o200k_base.
        estimate_factor=1.3,
    ),
}

#: The providers a mate may name, in the order people are told about them.
PROVIDER_NAMES: tuple[str, ...] = tuple(PROVIDERS)
#: The provider of a model name no provider claims (OpenAI-compatible servers).
DEFAULT_PROVIDER = "openai"


@dataclass(frozen=True)
class RequestParameters:
    """How to send a model its settings: the name of the output-token cap, whether a
    temperature may be sent, and the tokens to add to the cap for reasoning."""

    token_limit: str
    temperature: bool
    reasoning_headroom: int = 0


def provider_spec(name: str) -> ProviderSpec:
    """The table's entry for ``name``; :class:`MateError` naming the choices if none."""
    spec = PROVIDERS.get(name)
    if spec is None:
        raise MateError(
            f"Unknown provider {name[:40]!r}: choose one of {', '.join(PROVIDER_NAMES)}."
        )
    return spec


def title(provider: str) -> str:
    """``"OpenAI"`` for ``"openai"``; an unknown name as given."""
    spec = PROVIDERS.get(provider)
    return spec.title if spec else provider


def family_of(provider: str, model: str) -> Family | None:
    """The family ``model`` belongs to at ``provider``, or None for an unknown model."""
    spec = PROVIDERS.get(provider)
    if spec is None:
        return None
    name = model.lower().rsplit("/", 1)[-1]
    best: Family | None = None
    longest = 0
    for family in spec.families:
        match = family.regex.match(name)
        if match and match.end() > longest:
            best, longest = family, match.end()
    return best


def provider_for_model(model: str) -> str:
    """The provider a model name implies: ``claude-*`` is Anthropic, anything else
    OpenAI (or a compatible server; ``anthropic/claude-...`` on OpenRouter is too)."""
    for spec in PROVIDERS.values():
        if spec.claims and re.match(spec.claims, model.lower()):
            return spec.name
    return DEFAULT_PROVIDER


def supports_vision(provider: str, model: str) -> bool:
    """Whether ``model`` accepts images (known vision families only)."""
    family = family_of(provider, model)
    return family is not None and family.vision


def token_encoding(provider: str, model: str) -> tuple[str, float]:
    """The BPE encoding to count ``model``'s tokens with, and the factor to scale the
    count by (1.0: the count is exact)."""
    family = family_of(provider, model)
    if family is not None and family.encoding:
        return family.encoding, 1.0
    if family is not None and family.estimate_factor:
        return "o200k_base", family.estimate_factor
    spec = PROVIDERS.get(provider)
    return "o200k_base", spec.estimate_factor if spec else 1.2


def starts_thinking(provider: str, model: str) -> bool:
    """Whether ``model``'s replies may start inside a ``<think>`` block, unopened."""
    family = family_of(provider, model)
    return family is not None and family.starts_thinking


def request_parameters(provider: str, model: str, host: str = "") -> RequestParameters:
    """What to send ``model`` at ``host`` (the base URL's host name).

    Reasoning families get the newest cap name (with headroom) and no temperature
    wherever they are served; other models the newest name on the provider's own
    hosts and the widely understood one elsewhere.
    """
    spec = provider_spec(provider)
    widely_understood, newest = spec.token_limits
    family = family_of(provider, model)
    if family is not None and family.reasoning:
        return RequestParameters(
            newest, temperature=False, reasoning_headroom=spec.reasoning_headroom
        )
    limit = newest if host in spec.official_hosts else widely_understood
    return RequestParameters(limit, temperature=True)


def accepts_temperature(provider: str, model: str) -> bool:
    """Whether ``model`` takes a temperature (reasoning families only take their own)."""
    family = family_of(provider, model)
    return family is None or not family.reasoning


def temperature_range(provider: str) -> tuple[float, float]:
    """The temperatures ``provider`` accepts, ``(low, high)`` inclusive."""
    return provider_spec(provider).temperature_range


def validate_model(model: str) -> str:
    """Return ``model`` if it is a well-formed model name (:data:`MODEL_PATTERN`), else
    raise :class:`MateError` saying the rule."""
    if not MODEL_PATTERN.fullmatch(model):
        raise MateError(f"{model[:40]!r} is not a model name: {MODEL_RULE}.")
    return model


def default_models(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The default model per provider: ``LOOPFLOW_<PROVIDER>_MODEL`` or the table's.

    Raises :class:`LoopflowError` naming the variable when one holds a bad model name,
    so a typo stops the start with a clear message instead of failing every turn.
    """
    env = os.environ if environ is None else environ
    models = {}
    for spec in PROVIDERS.values():
        value = env.get(spec.model_variable, "").strip()
        if value:
            try:
                validate_model(value)
            except MateError as exc:
                raise LoopflowError(f"{spec.model_variable}: {exc}") from None
        models[spec.name] = value or spec.default_model
    return models


def key_is_set(provider: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment holds a key for ``provider``."""
    env = os.environ if environ is None else environ
    return any(env.get(variable, "").strip() for variable in provider_spec(provider).key_variables)


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"(?:{pattern})(?=$|[-.:@_])")
