"""Mate names offered as you type (slash autocomplete): what matches, in which order, how many."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from discord import app_commands

from loopflow.mates import builtin_mate, generic_mate
from loopflow_cog.converters import ExistingMate
from loopflow_cog.mate_choices import (
    CHOICE_CHARS,
    MAX_CHOICES,
    choice_label,
    matching_mates,
    mate_choices,
)
from loopflow_cog.store import Store


def mates(*names: str) -> list:
    return [generic_mate(name) for name in names]


def names(found: list) -> list[str]:
    return [mate.name for mate in found]


def test_nothing_typed_offers_every_mate_in_order() -> None:
    assert names(matching_mates(mates("maya", "merlin", "pip"), "")) == ["maya", "merlin", "pip"]


def test_prefix_matches_come_before_substring_matches() -> None:
    found = matching_mates(mates("homer", "merlin", "clement", "mentor"), "me")
    assert names(found) == ["merlin", "mentor", "homer", "clement"]


def test_matching_ignores_case_and_reads_the_display_name_too() -> None:
    shown = generic_mate("cb").replace(display_name="Code Buddy")
    found = matching_mates([*mates("maya"), shown], "  BUDDY ")
    assert names(found) == ["cb"]
    assert names(matching_mates(mates("maya"), "MA")) == ["maya"]


def test_nothing_matches() -> None:
    assert matching_mates(mates("maya", "merlin"), "zed") == []


def test_at_most_25_choices() -> None:
    many = mates(*(f"mate{i:02d}" for i in range(40)))
    found = matching_mates(many, "mate")
    assert len(found) == MAX_CHOICES == 25
    assert names(found)[:2] == ["mate00", "mate01"]


def test_a_label_names_the_mate_within_discords_100_characters() -> None:
    assert choice_label(generic_mate("maya")) == "Maya"  # only the case differs
    long = generic_mate("cb").replace(display_name="C" * 80)
    label = choice_label(long.replace(name="x" * 32))
    assert label.endswith("(" + "x" * 32 + ")") and len(label) == CHOICE_CHARS == 100
    assert choice_label(generic_mate("cb").replace(display_name="Code Buddy")) == "Code Buddy (cb)"


@pytest.fixture()
async def store(config) -> Store:
    store = Store(config)
    for name in ("maya", "merlin"):
        await store.add_mate(1, builtin_mate(name))
    await store.add_mate(1, generic_mate("pip"))
    await store.add_mate(2, generic_mate("other"))
    await store.set_dm_choice(42, 1, "maya")
    return store


def interaction(store: Store, guild_id: int | None, user_id: int = 7) -> SimpleNamespace:
    cog = SimpleNamespace(store=store, qualified_name="Loopflow")

    async def disabled(cog: object, guild: object) -> bool:
        return False

    bot = SimpleNamespace(
        get_cog=lambda name: cog,
        cog_disabled_in_guild=disabled,
        get_guild=lambda guild_id: SimpleNamespace(id=guild_id),
    )
    guild = SimpleNamespace(id=guild_id) if guild_id is not None else None
    return SimpleNamespace(
        client=bot, guild=guild, guild_id=guild_id, user=SimpleNamespace(id=user_id)
    )


async def test_a_servers_choices_are_its_own_mates_with_the_name_as_value(store) -> None:
    choices = await mate_choices(interaction(store, 1), "m")
    assert [(c.name, c.value) for c in choices] == [("Maya", "maya"), ("Merlin", "merlin")]
    assert await mate_choices(interaction(store, 2), "") == [
        app_commands.Choice(name="Other", value="other")
    ]


async def test_in_dms_the_choices_are_the_mates_of_the_dm_mates_server(store) -> None:
    choices = await mate_choices(interaction(store, None, user_id=42), "")
    assert [c.value for c in choices] == ["maya", "merlin", "pip"]
    assert await mate_choices(interaction(store, None, user_id=43), "") == []  # no DM mate


async def test_a_mate_parameter_autocompletes_by_its_type(store) -> None:
    # Every command parameter annotated ExistingMate gets the autocomplete (discord.py
    # uses a transformer's own autocomplete method).
    transformer = ExistingMate()
    assert isinstance(transformer, app_commands.Transformer)
    choices = await transformer.autocomplete(interaction(store, 1), "PI")
    assert [c.value for c in choices] == ["pip"]
