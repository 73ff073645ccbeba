"""The harness on Red's PostgreSQL backend: start, answer, restart with data kept.

Uses the server the PG* environment variables point at (PGHOST or PGPORT set), else a
throwaway one (``postgres_server.py``), else is skipped. Each module gets a fresh database.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_discord import FakeDiscord
from harness import RedProcess
from on_postgres import red_backend, test_that_red_ran_on_postgres  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]



async def test_postgres_instance_answers_and_keeps_data(
    discord: FakeDiscord, red: RedProcess, tmp_path: Path
) -> None:
    assert red.database is not None
    assert (await discord.command("bob", "general", "!ping")).content == "Pong."
    await red.addpath(tmp_path)
    await red.restart()
    reply = await discord.command("alice", "admin", "!paths")
    assert str(tmp_path) in reply.content
    assert red.blocked_connections() == []
