"""The price table (package data), its lookup, owner overrides, and the cost of usage."""

from __future__ import annotations

import json
import math
import re
from importlib import resources
from pathlib import Path

import pytest

from loopflow.cost import cost
from loopflow.errors import LoopflowError, SettingError
from loopflow.pricing import PRICES_AS_OF, Prices, owner_prices, prices_for
from loopflow.providers.base import Usage

TABLE = json.loads((resources.files("loopflow") / "prices.json").read_text(encoding="utf-8"))


def test_the_table_ships_as_package_data_with_its_date_and_sources() -> None:
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", PRICES_AS_OF)
    assert TABLE["as_of"] == PRICES_AS_OF
    assert any("openai.com" in url for url in TABLE["sources"])
    assert any("anthropic.com" in url for url in TABLE["sources"])


def test_the_package_data_is_declared_for_installs() -> None:
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'loopflow = \[[^\]]*"prices\.json"', pyproject)


@pytest.mark.parametrize(
    "model",
    ["gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o",
     "gpt-4o-mini", "o3", "o4-mini", "o3-mini", "claude-opus-4-5", "claude-opus-4-1",
     "claude-sonnet-4-5", "claude-sonnet-4", "claude-haiku-4-5", "claude-3-7-sonnet",
     "claude-3-5-haiku", "claude-3-haiku"],
)  # fmt: skip
def test_the_current_models_have_prices(model: str) -> None:
    prices = prices_for(model)
    assert prices is not None
    assert 0 < prices.cached_input <= prices.input < prices.output


def test_anthropic_caches_write_at_a_quarter_more_and_read_at_a_tenth() -> None:
    for model, row in TABLE["models"].items():
        if model.startswith("claude"):
            # Haiku 3 is listed at $0.30 and $0.03 for $0.25 input: rounded to the cent.
            assert row["cache_write"] == pytest.approx(1.25 * row["input"], abs=0.013), model
            assert row["cached_input"] == pytest.approx(0.1 * row["input"], abs=0.005), model


def test_openai_models_write_the_cache_for_free() -> None:
    prices = prices_for("gpt-5-mini")
    assert prices == Prices(input=0.25, output=2.0, cached_input=0.025, cache_write=0.25)


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # the first snapshot costs twice as much
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("gpt-5-2025-08-07", "gpt-5"),
        ("gpt-5-chat-latest", "gpt-5-chat"),
        ("o4-mini-2025-04-16", "o4-mini"),
        ("openai/gpt-4.1-mini", "gpt-4.1-mini"),
        ("GPT-5-Mini", "gpt-5-mini"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("claude-opus-4-0", "claude-opus-4-0"),
    ],
)
def test_a_model_takes_the_longest_matching_family(model: str, key: str) -> None:
    assert prices_for(model) == Prices.from_dict(TABLE["models"][key])


@pytest.mark.parametrize(
    "model",
    [
        "llama3.1:8b",
        "gpt-4",  # not in the table (a different price from gpt-4o or gpt-4.1)
        "gpt-5-turbo-max",  # unknown variants are not priced as their family
        "o3-deep-research",
        "claude-sonnet-4-7",
        "gpt-4o-audio-preview",
        "",
    ],
)
def test_an_unknown_model_has_no_price_never_a_wrong_one(model: str) -> None:
    assert prices_for(model) is None
    assert cost(Usage(1000, 1000), prices_for(model)) is None


def test_an_owner_price_adds_a_model() -> None:
    local = owner_prices("llama3.1:8b", 0, 0)
    assert prices_for("llama3.1:8b", {"llama3.1:8b": local}) == Prices(0, 0, 0, 0)


def test_an_owner_price_wins_over_the_table_for_that_family_only() -> None:
    overrides = {"gpt-4o": owner_prices("gpt-4o", 2.0, 8.0, 1.0)}
    assert prices_for("gpt-4o-2024-11-20", overrides) == Prices(2.0, 8.0, 1.0, 2.0)
    assert prices_for("gpt-4o-mini", overrides) == prices_for("gpt-4o-mini")


def test_an_owner_price_without_a_cached_price_takes_the_providers_rule() -> None:
    # Anthropic reads cost a tenth and writes a quarter more; OpenAI's cached price
    # differs per model, so without one the cached tokens cost the full input price.
    assert owner_prices("claude-opus-9", 10, 50) == Prices(10, 50, 1.0, 12.5)
    assert owner_prices("gpt-9", 10, 50) == Prices(10, 50, 10, 10)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((-1, 2), "input"),
        ((1, -2), "output"),
        ((1, 2, -0.1), "cached"),
        ((math.nan, 2), "input"),
        ((1, math.inf), "output"),
        ((1, 2, 3), "more than the input"),
        ((1e7, 2), "input"),
    ],
)
def test_a_bad_owner_price_is_a_clear_error(args: tuple[float, ...], words: str) -> None:
    with pytest.raises(SettingError, match=words) as caught:
        owner_prices("gpt-9", *args)
    assert isinstance(caught.value, LoopflowError) and isinstance(caught.value, ValueError)


def test_prices_round_trip_as_plain_json() -> None:
    prices = owner_prices("claude-opus-9", 10, 50, 0.5)
    assert Prices.from_dict(json.loads(json.dumps(prices.to_dict()))) == prices


def test_cost_prices_each_kind_of_token() -> None:
    sonnet = prices_for("claude-sonnet-4-5")
    assert sonnet is not None
    usage = Usage(
        input_tokens=1_400_000,
        output_tokens=100_000,
        cached_input_tokens=1_000_000,
        cache_write_tokens=200_000,
    )
    # 200k fresh at $3, 1M read at $0.30, 200k written at $3.75, 100k out at $15.
    assert cost(usage, sonnet) == pytest.approx(0.6 + 0.3 + 0.75 + 1.5)


def test_cost_of_openai_cached_tokens() -> None:
    mini = prices_for("gpt-5-mini")
    usage = Usage(input_tokens=2_000_000, output_tokens=0, cached_input_tokens=1_500_000)
    assert cost(usage, mini) == pytest.approx(0.5 * 0.25 + 1.5 * 0.025)
    assert cost(Usage(), mini) == 0.0
