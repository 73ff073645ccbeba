"""``flush_ratio_1000_to_1_guilds``: one flush with one server changed, 1,000 servers vs 1.

    .venv/bin/python bench/flush_ratio.py [--quick]

Calls ``bench/store_flush.py`` (the store's own benchmark, another helper's work) through
its ``measure(guild_count, json_store)``: every server holds a full message index, one
server's reply is recorded, and the next flush is timed on Red's JSON driver. Prints one
JSON line: the ratio and both times, or ``{"not_measured": why}`` when the script or the
function is missing or fails. ``bench/run.py`` runs this in a subprocess with a time limit
(today's store writes every server's index on a flush: 1,000 servers take far longer than
the limit, which run.py reports as "not measured", not as a number).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    """Print the JSON line described in the module docstring."""
    sys.path.insert(0, str(HERE))
    try:
        import store_flush

        measure = store_flush.measure
        json_store = store_flush.json_store
    except (ImportError, AttributeError) as exc:
        print(json.dumps({"not_measured": f"bench/store_flush.py has no measure(): {exc}"}))
        return
    try:
        one, _, _ = asyncio.run(measure(1, json_store))
        many, _, big_file = asyncio.run(measure(1000, json_store))
    except Exception as exc:  # the store is being reworked: report, never invent
        print(json.dumps({"not_measured": f"store_flush.measure failed: {exc!r}"}))
        return
    print(
        json.dumps(
            {
                "flush_ms_1_guild": one * 1000,
                "flush_ms_1000_guilds": many * 1000,
                "ratio": many / one,
                "file_mb_1000_guilds": big_file / 1e6,
            }
        )
    )


if __name__ == "__main__":
    main()
