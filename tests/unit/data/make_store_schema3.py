"""Writes ``store_schema3.json``: what the store of loopflow at commit 86229b4 (schema 3,
every server's records in the cog's one file) kept on Red's JSON driver.

Run from a checkout of that commit (the store of a later schema writes its own layout)::

    .venv/bin/python tests/unit/data/make_store_schema3.py tests/unit/data/store_schema3.json
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from redbot.core import Config
from redbot.core._drivers import BackendType, get_driver

from loopflow.chat.limits import DayCounts, LimitSettings
from loopflow.mates import builtin_mate
from loopflow.providers.base import Usage
from loopflow_cog.store import Store

NOON = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


async def write(folder: Path) -> None:
    """Three servers with mates, bindings, reset points, an index, usage, limits, today's
    member counts, a chat thread and a note, saved by the store into ``folder``."""
    driver = get_driver("Loopflow", "1", BackendType.JSON, data_path_override=folder)
    config = Config(cog_name="Loopflow", unique_identifier="1", driver=driver)
    store = Store(config, whole_file_writes=True)
    await store.migrate()
    for n, guild in enumerate((1001, 1002, 1003)):
        await store.add_mate(guild, builtin_mate("maya"))
        await store.add_mate(guild, builtin_mate("merlin"))
        await store.bind(guild, 2000 + n, "maya")
        await store.set_cooldown(guild, 5 + n)
        await store.set_reset_point(2000 + n, 3000 + n)
        base = 10**17 + n * 1000
        await store.record_messages(guild, range(base, base + 40), "maya", answered=base - 1)
        await store.record_messages(guild, [base + 50, base + 51], "merlin")
        await store.add_usage(guild, "maya", Usage(100 * (n + 1), 20, 5), "gpt-4o", NOON)
        await store.add_usage(guild, "merlin", Usage(7, 3), "claude-sonnet-4-5", NOON)
    await store.set_limit_settings(1002, LimitSettings(server=100_000, member=5_000))
    await store.save_member_counts(1002, DayCounts(NOON.date(), {}, {555: 1234}))
    await store.add_thread(1003, 4003, 777)
    await store.memory.save_notes(1001, "maya", 555, ["likes tea"])
    await store.aclose()


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(write(Path(tmp)))
        data = json.loads((Path(tmp) / "settings.json").read_text())
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
