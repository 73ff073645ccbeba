"""The library stays free of Discord and Red: importing it loads neither."""

from __future__ import annotations

import subprocess
import sys

LIBRARY_MODULES = [
    "loopflow",
    "loopflow.mates",
    "loopflow.errors",
    "loopflow.io.session",
    "loopflow.io.discord",
    "loopflow.io.tokens",
    "loopflow.chat.history",
    "loopflow.chat.queue",
    "loopflow.chat.routing",
    "loopflow.chat.streaming",
    "loopflow.providers.openai",
    "loopflow.providers.anthropic",
    "loopflow.providers.fake",
    "loopflow.cli",
    "loopflow.launcher",
]


def test_importing_the_library_loads_neither_discord_nor_red() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {LIBRARY_MODULES!r}: importlib.import_module(name)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'discord', 'redbot'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
