"""Writes tests/unit/data/store_schema3.json with main's Store (schema 3) on Red's JSON driver."""
import asyncio, json, shutil, tempfile, sys
from datetime import datetime, timezone
from pathlib import Path
from redbot.core import Config
from redbot.core._drivers import BackendType, get_driver
from loopflow.chat.limits import DayCounts, LimitSettings
from loopflow.mates import builtin_mate
from loopflow.providers.base import Usage
from loopflow_cog.store import Store

NOON = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)

async def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        driver = get_driver("Loopflow", "1", BackendType.JSON, data_path_override=Path(tmp))
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
        data = json.loads((Path(tmp) / "settings.json").read_text())
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")

asyncio.run(main(Path(sys.argv[1])))
