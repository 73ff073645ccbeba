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
from loopflow.pricing import LONG_PROMPT, PRICES_AS_OF, Prices, owner_prices, prices_for, usage_key
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


#: The providers' current and still-available models (late November 2026): OpenAI's
#: models page and deprecations page, Anthropic's models overview and pricing page.
CURRENT_MODELS = [
    "gpt-6.2-astra", "gpt-6.2-sol", "gpt-6.1-terra", "gpt-6-luna", "gpt-6.1-sol", "gpt-6-astra",
    "gpt-6-sol", "gpt-5.5", "gpt-5.4", "gpt-5.4-mini", "gpt-5.2", "gpt-5.1", "gpt-5", "gpt-5-mini",
    "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4o", "gpt-4o-mini", "o3",
    "claude-fable-5-2", "claude-fable-5-1", "claude-fable-5", "claude-opus-5-5", "claude-opus-5",
    "claude-opus-4-8", "claude-opus-4-7", "claude-opus-4-6", "claude-opus-4-5",
    "claude-sonnet-5-5", "claude-sonnet-5", "claude-sonnet-4-6", "claude-sonnet-4-5",
    "claude-sonnet-4", "claude-haiku-5-5", "claude-haiku-4-5", "claude-3-haiku",
]  # fmt: skip


@pytest.mark.parametrize("model", CURRENT_MODELS)
def test_the_current_models_have_prices(model: str) -> None:
    prices = prices_for(model)
    assert prices is not None
    assert 0 < prices.cached_input <= prices.input < prices.output


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # platform.claude.com: Sonnet 5.5's cache hits cut to $0.10 on 2026-10-07.
        ("claude-sonnet-5-5", Prices(input=2.0, output=10.0, cached_input=0.1, cache_write=2.5)),
        ("claude-sonnet-5", Prices(input=2.0, output=10.0, cached_input=0.2, cache_write=2.5)),
        ("claude-opus-5-5", Prices(input=4.0, output=20.0, cached_input=0.2, cache_write=5.0)),
        ("claude-fable-5-1", Prices(input=10.0, output=50.0, cached_input=0.25, cache_write=12.5)),
        ("claude-haiku-4-5", Prices(input=1.0, output=5.0, cached_input=0.1, cache_write=1.25)),
    ],
)
def test_flat_prices_of_current_models(model: str, expected: Prices) -> None:
    assert prices_for(model) == expected


def test_anthropic_caches_write_at_a_quarter_more_and_read_at_most_a_tenth() -> None:
    for model, row in TABLE["models"].items():
        if model.startswith("claude"):
            for tier in (row, row.get("long_prompt") or row):
                # Haiku 3 is listed at $0.30 and $0.03 for $0.25 input: rounded to the cent.
                assert tier["cache_write"] == pytest.approx(1.25 * tier["input"], abs=0.013), model
                # 0.1x before the 5.x models; Sonnet and Opus 5.5 read at 0.05x, Fable 5.1
                # and 5.2 at 0.025x.
                assert tier["cached_input"] <= 0.1 * tier["input"] + 0.005, model


def test_older_openai_models_write_the_cache_for_free() -> None:
    prices = prices_for("gpt-5-mini")
    assert prices == Prices(input=0.25, output=2.0, cached_input=0.025, cache_write=0.25)


@pytest.mark.parametrize("model", ["gpt-6.2-sol", "gpt-6.2-astra", "gpt-6-luna", "gpt-6.1-terra"])
def test_gpt_6_models_bill_cache_writes_at_a_quarter_more(model: str) -> None:
    # developers.openai.com prompt caching: from the GPT-5.6 family on, writes cost 1.25x.
    prices = prices_for(model)
    assert prices is not None
    assert prices.cache_write == pytest.approx(1.25 * prices.input)


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
        # Today's names: dateless ids, OpenAI's dated snapshots, longest family first.
        ("gpt-6.1-sol-2026-09-29", "gpt-6.1-sol"),
        ("openai/gpt-6.2-sol", "gpt-6.2-sol"),
        ("GPT-6.2-Astra", "gpt-6.2-astra"),
        ("gpt-5.4-mini-2026-03-17", "gpt-5.4-mini"),
        ("claude-sonnet-5-5", "claude-sonnet-5-5"),
        ("claude-sonnet-5", "claude-sonnet-5"),
        ("claude-opus-4-7", "claude-opus-4-7"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("claude-haiku-5-5@20261007", "claude-haiku-5-5"),
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
        "gpt-6-terra",  # there is none: Terra went from 5.6 to 6.1
        "gpt-6.2-sol-ultrafast",  # priced apart (3x), not as gpt-6.2-sol
        "claude-fable-5-3",
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


# --- prices by prompt length -------------------------------------------------------------

HAIKU_SHORT = Prices(input=0.1, output=0.5, cached_input=0.01, cache_write=0.125)
HAIKU_LONG = Prices(input=0.5, output=2.5, cached_input=0.05, cache_write=0.625)


def test_haiku_5_5_is_priced_by_the_length_of_each_prompt() -> None:
    # platform.claude.com: "$0.10 / MTok for prompts up to 100,000 tokens, $0.50 / MTok for
    # prompts over 100,000 tokens", on every kind of token of that request.
    haiku = prices_for("claude-haiku-5-5")
    assert haiku is not None
    assert haiku.for_prompt(100_000) == HAIKU_SHORT
    assert haiku.for_prompt(100_001) == HAIKU_LONG
    assert prices_for("claude-haiku-5-5" + LONG_PROMPT) == HAIKU_LONG
    assert prices_for("claude-haiku-5-5-20261007" + LONG_PROMPT) == HAIKU_LONG


def test_gpt_6_requests_over_272k_input_tokens_cost_more_in_full() -> None:
    # developers.openai.com/api/docs/models/gpt-6.2-sol: over 272K input tokens, input and
    # cache rates double and output costs 1.5 times, for the full request.
    sol = prices_for("gpt-6.2-sol")
    assert sol is not None
    assert sol.for_prompt(272_000) == Prices(2.0, 10.0, 0.1, 2.5)
    assert sol.for_prompt(272_001) == Prices(4.0, 15.0, 0.2, 5.0)


def test_a_request_is_counted_under_the_price_tier_of_its_prompt() -> None:
    # The prompt is all of the input: fresh, read from the cache and written to it.
    short = Usage(100_000, 500, cached_input_tokens=90_000, cache_write_tokens=9_000)
    long = Usage(100_001, 500, cached_input_tokens=90_000, cache_write_tokens=9_000)
    assert usage_key("claude-haiku-5-5", short) == "claude-haiku-5-5"
    assert usage_key("claude-haiku-5-5", long) == "claude-haiku-5-5" + LONG_PROMPT
    assert usage_key("gpt-6.2-sol", Usage(272_001, 1)) == "gpt-6.2-sol" + LONG_PROMPT
    # One price for every prompt length, or no price at all: the model's own name.
    assert usage_key("claude-sonnet-5-5", Usage(900_000, 1)) == "claude-sonnet-5-5"
    assert usage_key("llama3.1:8b", Usage(900_000, 1)) == "llama3.1:8b"


def test_an_owner_price_for_a_tiered_model_holds_for_every_prompt_length() -> None:
    flat = owner_prices("claude-haiku-5-5", 0.2, 1.0)
    overrides = {"claude-haiku-5-5": flat}
    assert prices_for("claude-haiku-5-5", overrides) == flat
    assert prices_for("claude-haiku-5-5" + LONG_PROMPT, overrides) == flat


def test_an_owner_price_for_a_known_model_keeps_its_cache_ratios() -> None:
    # GPT-6.2 Sol reads the cache at 5 % and writes it at 125 % of its input price.
    sol = owner_prices("gpt-6.2-sol", 4, 20)
    assert (sol.cached_input, sol.cache_write) == (pytest.approx(0.2), pytest.approx(5.0))
    sonnet = owner_prices("claude-sonnet-5-5", 3, 15)
    assert (sonnet.cached_input, sonnet.cache_write) == (pytest.approx(0.15), pytest.approx(3.75))


def test_tiered_prices_round_trip_as_plain_json() -> None:
    haiku = prices_for("claude-haiku-5-5")
    assert haiku is not None and haiku.long_prompt is not None
    assert Prices.from_dict(json.loads(json.dumps(haiku.to_dict()))) == haiku


@pytest.mark.parametrize(
    "tier",
    [{"over": 0}, {"over": "many"}, {"over": True}, {"over": 10, "input": -1, "output": 1}],
)
def test_a_bad_long_prompt_tier_is_a_clear_error(tier: dict[str, object]) -> None:
    row = {"input": 1, "output": 2, "long_prompt": {"input": 2, "output": 3, **tier}}
    with pytest.raises(SettingError):
        Prices.from_dict(row)
