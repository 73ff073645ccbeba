"""``flush_ratio_1000_to_1_guilds``: one flush with one server changed, 1,000 servers vs 1.

    .venv/bin/python bench/flush_ratio.py

Calls ``bench/store_flush.py`` (the store's own benchmark) through its
``flush_figures((1, 1000))``: every server holds a full message index, one server's reply
is recorded, and the next flush is timed on Red's JSON driver, the two counts' rounds
alternating so that the ratio is measured side by side. Prints one JSON line: the ratio
and both times, or ``{"not_measured": why}`` when the measurement fails.
``bench/run.py`` runs this in a subprocess with a time limit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    """Print the JSON line described in the module docstring."""
    sys.path.insert(0, str(HERE))
    try:
        from store_flush import flush_figures

        figures = flush_figures((1, 1000))
    except Exception as exc:  # report, never invent a number
        print(json.dumps({"not_measured": f"store_flush.flush_figures failed: {exc!r}"}))
        return
    print(
        json.dumps(
            {
                "flush_ms_1_guild": figures["flush_ms_1_guilds"],
                "flush_ms_1000_guilds": figures["flush_ms_1000_guilds"],
                "ratio": figures["flush_ratio_1000_to_1_guilds"],
                "file_mb_1000_guilds": figures["json_total_bytes_1000_guilds"] / 1e6,
            }
        )
    )


if __name__ == "__main__":
    main()
