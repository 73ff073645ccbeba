"""List prices: what a model's tokens cost, in USD per million tokens.

The prices ship with the package as data, ``loopflow/prices.json``, dated
(:data:`PRICES_AS_OF`); :func:`prices_for` looks a model up there, under the owner's
overrides (:func:`owner_prices`). A model matches a priced family only by the family's
name alone or followed by a date or ``-latest``, the longest match first; an unknown
model has no price (None), never a wrong one.

Some models are priced by the length of each request's prompt (Claude Haiku 5.5 over
100,000 tokens, GPT-6 over 272,000 input tokens): every token of a longer request costs
the higher tier's price (:class:`LongPrompt`). Usage is kept as sums per model and day
(:mod:`loopflow.cost`), where a request's length is lost, so each request is counted at
record time under :func:`usage_key`: the model's name, or the name with
:data:`LONG_PROMPT` for a request over its model's threshold. Each sum then holds one
tier only and is priced exactly; nothing is estimated.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from loopflow.errors import SettingError
from loopflow.models import provider_for_model
from loopflow.providers.base import Usage

#: The most a price may be, in USD per million tokens: 100 times the dearest model
#: listed (o1-pro's output); more is a typo, not a price.
MAX_PRICE = 100_000.0


#: Appended to a model's name for the usage of its requests priced at the long-prompt
#: tier (:func:`usage_key`). It starts with a space, which no model name has
#: (:data:`~loopflow.models.MODEL_PATTERN`).
LONG_PROMPT = " (long prompt)"


@dataclass(frozen=True)
class Prices:
    """One model's list prices in USD per million tokens: ``input`` (not cached),
    ``output``, ``cached_input`` (read from the prompt cache) and ``cache_write``
    (written to it: Anthropic's 5-minute writes cost 1.25 times the input price, as do
    OpenAI's from GPT-5.6 on; older OpenAI models write at the input price).

    ``long_prompt``: the prices of every token of a request whose prompt is longer than
    its threshold (None: one price for every length)."""

    input: float
    output: float
    cached_input: float
    cache_write: float
    long_prompt: LongPrompt | None = None

    def for_prompt(self, prompt_tokens: int) -> Prices:
        """The flat prices of one request whose prompt (all its input tokens: fresh, read
        from the cache and written to it) is ``prompt_tokens`` long."""
        tier = self.long_prompt
        if tier is not None and prompt_tokens > tier.over:
            return tier.prices
        return Prices(self.input, self.output, self.cached_input, self.cache_write)

    def to_dict(self) -> dict[str, Any]:
        """``{"input": ..., "output": ..., "cached_input": ..., "cache_write": ...}``, and
        ``"long_prompt": {"over": <tokens>, <the same four>}`` for a tiered model."""
        data: dict[str, Any] = {
            "input": self.input,
            "output": self.output,
            "cached_input": self.cached_input,
            "cache_write": self.cache_write,
        }
        if self.long_prompt is not None:
            data["long_prompt"] = {
                "over": self.long_prompt.over,
                **self.long_prompt.prices.to_dict(),
            }
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prices:
        """The inverse of :meth:`to_dict`; ``cached_input`` and ``cache_write`` default to
        the input price. Raises :class:`SettingError` for a missing or bad price or tier
        (a threshold that is not a positive number of tokens)."""
        if not isinstance(data, Mapping) or "input" not in data or "output" not in data:
            raise SettingError(f"not a price: {data!r:.80}")
        price = _price("input", data["input"])
        tier = data.get("long_prompt")
        return cls(
            price,
            _price("output", data["output"]),
            _cached_price(price, data.get("cached_input", price)),
            _price("cache write", data.get("cache_write", price)),
            None if tier is None else LongPrompt.from_dict(tier),
        )


@dataclass(frozen=True)
class LongPrompt:
    """The tier of a model priced by prompt length: a request whose prompt has more than
    ``over`` tokens pays ``prices`` for all its tokens, output included."""

    over: int
    prices: Prices

    @classmethod
    def from_dict(cls, data: Any) -> LongPrompt:
        """``{"over": <tokens>, "input": ..., "output": ..., ...}``; :class:`SettingError`
        for anything else."""
        over = data.get("over") if isinstance(data, Mapping) else None
        if isinstance(over, bool) or not isinstance(over, int) or over <= 0:
            raise SettingError(f"not a long-prompt tier: {data!r:.80}")
        prices = Prices.from_dict({k: v for k, v in data.items() if k != "over"})
        return cls(over, prices.for_prompt(0))


@dataclass(frozen=True)
class PriceTable:
    """The shipped price list: when its figures were taken, from where, and per model
    family (a lower-cased model name without a date suffix) its :class:`Prices`."""

    as_of: str
    sources: tuple[str, ...]
    models: Mapping[str, Prices]


def _load_price_table() -> PriceTable:
    raw = json.loads((resources.files("loopflow") / "prices.json").read_text(encoding="utf-8"))
    models = {name.lower(): Prices.from_dict(row) for name, row in raw["models"].items()}
    return PriceTable(str(raw["as_of"]), tuple(raw["sources"]), models)


# What may follow a family's name in a model name and still be that family: a dated
# snapshot (-2024-08-06, -20250929, Vertex's @20250929) or -latest. Nothing else: a
# plain prefix would price gpt-5-pro (twelve times dearer) as gpt-5.
_VERSION_SUFFIX = re.compile(r"(?:[-@](?:\d{4}-\d{2}-\d{2}|\d{8}|latest))?")


def prices_for(model: str, overrides: Mapping[str, Prices] | None = None) -> Prices | None:
    """``model``'s prices: the owner's ``overrides`` (model name -> prices) merged over
    :data:`PRICE_TABLE`, or None for a model neither knows (its cost is unknown: never
    another model's price).

    The name's last path segment (``openai/gpt-4o`` is ``gpt-4o``), lower-cased, matches
    a family when it is the family's name, alone or followed by a date or ``-latest``
    (``gpt-4o-2024-08-06``, ``claude-sonnet-4-5@20250929``); the longest family wins, so
    ``gpt-4o-mini-2024-07-18`` is ``gpt-4o-mini``.

    A name ending in :data:`LONG_PROMPT` (:func:`usage_key`) gets its model's long-prompt
    tier, flat; an owner's price for the model has no tier and holds for every length.
    """
    long = model.endswith(LONG_PROMPT)
    name = model[: -len(LONG_PROMPT)] if long else model
    name = name.strip().lower().rsplit("/", 1)[-1]
    if not overrides:
        prices = _table_prices(name)
    else:
        merged = {**PRICE_TABLE.models, **{key.lower(): value for key, value in overrides.items()}}
        prices = _longest_match(name, merged)
    if prices is None or not long or prices.long_prompt is None:
        return prices
    return prices.long_prompt.prices


def usage_key(model: str, usage: Usage) -> str:
    """The name to count one request's ``usage`` of ``model`` under: ``model``, or
    ``model + LONG_PROMPT`` when the shipped table prices ``model`` by prompt length and
    this request's prompt (``usage.input_tokens``: fresh, cache reads and cache writes,
    as the providers count it) is over the threshold. Sums of one key are of one tier, so
    :func:`loopflow.cost.cost` prices them exactly."""
    prices = _table_prices(model.strip().lower().rsplit("/", 1)[-1])
    if prices is not None and prices.long_prompt is not None:
        if usage.input_tokens > prices.long_prompt.over:
            return model + LONG_PROMPT
    return model


@lru_cache(maxsize=256)
def _table_prices(name: str) -> Prices | None:
    return _longest_match(name, PRICE_TABLE.models)


def _longest_match(name: str, families: Mapping[str, Prices]) -> Prices | None:
    best, longest = None, -1
    for family, prices in families.items():
        if len(family) > longest and name.startswith(family) and family:
            if _VERSION_SUFFIX.fullmatch(name, len(family)):
                best, longest = prices, len(family)
    return best


def owner_prices(model: str, input: float, output: float, cached: float | None = None) -> Prices:
    """The prices an owner sets for ``model`` (``[p]mateset price``), in USD per million
    tokens, for every prompt length.

    For a model the shipped table prices, the cache keeps the table's ratios to the input
    price (Claude Sonnet 5.5 reads at 5 %, GPT-6 writes at 125 %). Otherwise, without
    ``cached``, the provider's rule: Anthropic's models (``claude-*``) read the cache at a
    tenth of the input price; others at the full input price (OpenAI's discount differs
    per model, so no guess that could come out too low); cache writes cost 1.25 times the
    input price on Anthropic, the input price elsewhere.

    Raises :class:`SettingError` for a price that is negative, not finite, over
    :data:`MAX_PRICE`, or a cached price over the input price.
    """
    price = _price("input", input)
    listed = _table_prices(model.strip().lower().rsplit("/", 1)[-1])
    if listed is not None and listed.input > 0:
        read, write = listed.cached_input / listed.input, listed.cache_write / listed.input
    elif provider_for_model(model) == "anthropic":
        read, write = 0.1, 1.25
    else:
        read, write = 1.0, 1.0
    return Prices(
        price,
        _price("output", output),
        _cached_price(price, price * read if cached is None else cached),
        _price("cache write", price * write),
    )


def _price(kind: str, value: Any) -> float:
    """``value`` as a price, or :class:`SettingError` naming ``kind``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingError(f"The {kind} price must be a number of USD per million tokens.")
    if not math.isfinite(value) or not 0 <= value <= MAX_PRICE:
        raise SettingError(
            f"The {kind} price must be between 0 and {MAX_PRICE:,.0f} USD per million tokens."
        )
    return float(value)


def _cached_price(input_price: float, value: Any) -> float:
    price = _price("cached", value)
    if price > input_price:
        raise SettingError("The cached price cannot be more than the input price.")
    return price


#: The list prices that ship with the package (``loopflow/prices.json``).
PRICE_TABLE = _load_price_table()
#: The date of :data:`PRICE_TABLE`'s figures, ``YYYY-MM-DD``.
PRICES_AS_OF = PRICE_TABLE.as_of
