"""Command converters: bad input is a clear BadArgument, good input a clean value."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from redbot.core import commands

from loopflow.mates import builtin_mate
from loopflow_cog.converters import AvatarURL, ExistingMate, MateName, ProviderName
from loopflow_cog.store import Store


@pytest.fixture()
async def ctx(config) -> SimpleNamespace:
    store = Store(config)
    await store.add_mate(1, builtin_mate("maya"))
    return SimpleNamespace(
        cog=SimpleNamespace(store=store), guild=SimpleNamespace(id=1), clean_prefix="!"
    )


async def test_mate_names_are_lower_cased_and_validated(ctx) -> None:
    assert await MateName().convert(ctx, "Code_Buddy-2") == "code_buddy-2"
    with pytest.raises(commands.BadArgument, match="`bad name` is not a valid mate name"):
        await MateName().convert(ctx, "bad name")
    with pytest.raises(commands.BadArgument, match="not a valid mate name"):
        await MateName().convert(ctx, "x" * 33)


async def test_existing_mates_are_found_case_insensitively(ctx) -> None:
    assert (await ExistingMate().convert(ctx, "MAYA")).name == "maya"
    with pytest.raises(
        commands.BadArgument, match=r"There is no mate called `nobody` here\. `!mate list`"
    ):
        await ExistingMate().convert(ctx, "nobody")


async def test_providers(ctx) -> None:
    assert await ProviderName().convert(ctx, "Anthropic") == "anthropic"
    with pytest.raises(commands.BadArgument, match="Unknown provider `gemini`"):
        await ProviderName().convert(ctx, "gemini")


async def test_avatar_urls(ctx) -> None:
    url = "https://example.com/maya.png"
    assert await AvatarURL().convert(ctx, f"<{url}>") == url  # Discord's no-embed brackets
    bad_urls = (
        "ftp://example.com/a.png",
        "example.com/a.png",
        "javascript:alert(1)",
        "https://[x",  # urllib's ValueError reached Red as a generic error
        "http://",
        "https://example.com:99999/a.png",
        "https://example.com/" + "a" * 3000,
    )
    for bad in bad_urls:
        with pytest.raises(commands.BadArgument, match="is not an http"):
            await AvatarURL().convert(ctx, bad)
