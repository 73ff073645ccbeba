"""List prices: what a model's tokens cost, in USD per million tokens.

The prices ship with the package as data, ``loopflow/prices.json``, dated
(:data:`PRICES_AS_OF`); :func:`prices_for` looks a model up there, under the owner's
overrides (:func:`owner_prices`). A model matches a priced family only by the family's
name alone or followed by a date or ``-latest``, the longest match first; an unknown
model has no price (None), never a wrong one.
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

#: The most a price may be, in USD per million tokens: 100 times the dearest model
#: listed (o1-pro's output); more is a typo, not a price.
MAX_PRICE = 100_000.0


@dataclass(frozen=True)
class Prices:
    """One model's list prices in USD per million tokens: ``input`` (not cached),
    ``output``, ``cached_input`` (read from the prompt cache) and ``cache_write``
    (written to it: Anthropic bills 1.25 times the input price, OpenAI nothing extra)."""

    input: float
    output: float
    cached_input: float
    cache_write: float

    def to_dict(self) -> dict[str, float]:
        """``{"input": ..., "output": ..., "cached_input": ..., "cache_write": ...}``."""
        return {
            "input": self.input,
            "output": self.output,
            "cached_input": self.cached_input,
            "cache_write": self.cache_write,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prices:
        """The inverse of :meth:`to_dict`; ``cached_input`` and ``cache_write`` default to
        the input price. Raises :class:`SettingError` for a missing or bad price."""
        if not isinstance(data, Mapping) or "input" not in data or "output" not in data:
            raise SettingError(f"not a price: {data!r:.80}")
        price = _price("input", data["input"])
        return cls(
            price,
            _price("output", data["output"]),
            _cached_price(price, data.get("cached_input", price)),
            _price("cache write", data.get("cache_write", price)),
        )


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
    """
    name = model.strip().lower().rsplit("/", 1)[-1]
    if not overrides:
        return _table_prices(name)
    merged = {**PRICE_TABLE.models, **{key.lower(): value for key, value in overrides.items()}}
    return _longest_match(name, merged)


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
    tokens. Without ``cached``, the provider's rule: Anthropic's models (``claude-*``)
    read the cache at a tenth of the input price; others at the full input price (OpenAI's
    discount differs per model, so no guess that could come out too low). Cache writes
    cost 1.25 times the input price on Anthropic, the input price elsewhere.

    Raises :class:`SettingError` for a price that is negative, not finite, over
    :data:`MAX_PRICE`, or a cached price over the input price.
    """
    price = _price("input", input)
    anthropic = provider_for_model(model) == "anthropic"
    if cached is None:
        cached = price / 10 if anthropic else price
    return Prices(
        price,
        _price("output", output),
        _cached_price(price, cached),
        price * 1.25 if anthropic else price,
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
