"""The library stays free of Discord and Red: importing it loads neither."""

from __future__ import annotations

import pkgutil
import subprocess
import sys


def library_modules() -> list[str]:
    """Every module of the library, found on disk (the Red adapter's copy excluded)."""
    import loopflow

    found = ["loopflow"]
    for module in pkgutil.walk_packages(loopflow.__path__, "loopflow."):
        if not module.name.startswith("loopflow.cog_adapter"):
            found.append(module.name)
    return found


def test_every_library_module_is_checked() -> None:
    names = library_modules()
    assert {"loopflow.cli", "loopflow.launcher", "loopflow.red_instance"} <= set(names)
    assert "loopflow.chat.streaming" in names and "loopflow.providers.openai" in names


def test_importing_the_library_loads_neither_discord_nor_red() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {library_modules()!r}: importlib.import_module(name)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'discord', 'redbot'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
