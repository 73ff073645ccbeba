"""The cog's lifecycle on Red's test bot: API token changes and unloading close every
provider client, and only once its requests in flight have ended."""

from __future__ import annotations

import asyncio

import discord
from chat_fakes import HeldAdapter

from loopflow.providers.base import Request
from loopflow_cog import cog as cog_module
from loopflow_cog.clients import Client
from loopflow_cog.cog import Loopflow

REQUEST = Request(model="m", system="", messages=())


async def test_a_token_change_closes_the_old_client_after_its_stream(red) -> None:
    cog = Loopflow(red)
    old = HeldAdapter()
    cog.providers["openai"] = Client(old)
    stream = cog.providers["openai"].execute(REQUEST, stream=True)
    await stream.__anext__()  # a reply is being written
    await cog.on_red_api_tokens_update("openai", {"api_key": "sk-new"})
    assert cog.providers["openai"].adapter is not old
    await asyncio.sleep(0)
    assert not old.closed  # the reply in flight goes on
    old.release.set()
    assert "".join([chunk.text async for chunk in stream]) == "world"
    await asyncio.wait_for(asyncio.gather(*cog._retiring), 1)
    assert old.closed
    await cog.cog_unload()


async def test_unloading_closes_replaced_and_current_clients(red, monkeypatch) -> None:
    monkeypatch.setattr(cog_module, "UNLOAD_GRACE", 0.05)
    cog = Loopflow(red)
    replaced, current = HeldAdapter(), HeldAdapter()
    cog.providers["openai"] = Client(replaced)
    stream = cog.providers["openai"].execute(REQUEST, stream=True)
    await stream.__anext__()  # still in flight when the owner unloads
    await cog.on_red_api_tokens_update("openai", {"api_key": "sk-new"})
    cog.providers["anthropic"] = Client(current)
    await cog.cog_unload()
    assert replaced.closed and current.closed
    assert not cog._retiring
    await stream.aclose()  # type: ignore[attr-defined]


async def test_ask_a_mate_joins_reds_tree_on_load_and_leaves_it_on_unload(red) -> None:
    # Red keeps the menu disabled until [p]slash enablecog; an install whose adapter is not
    # inside the loopflow package (a wheel) relies on cog_unload to take it off again.
    cog = Loopflow(red)
    await cog.cog_load()
    key = ("Ask a mate", None, discord.AppCommandType.message.value)
    assert red.tree._disabled_context_menus.get(key) is cog.ask_mate.menu
    await cog.cog_unload()
    assert key not in red.tree._disabled_context_menus
    again = Loopflow(red)
    await again.cog_load()  # a second load finds no menu of that name in the way
    await again.cog_unload()
