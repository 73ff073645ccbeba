"""Red's entry point: a library that will not import becomes a clear CogLoadError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from redbot.core.errors import CogLoadError

import loopflow


async def test_an_import_failure_while_loading_names_the_pipinstall_fix(monkeypatch) -> None:
    async def broken_setup(bot: object) -> None:
        raise ImportError("cannot import name 'Sentinel' from 'typing_extensions'")

    monkeypatch.setattr("loopflow_cog.setup", broken_setup)
    with pytest.raises(CogLoadError) as caught:
        await loopflow.setup(object())
    message = str(caught.value)
    assert "cannot import name 'Sentinel'" in message
    info = json.loads((Path(loopflow.__file__).parent / "info.json").read_text())
    assert '[p]pipinstall "typing-extensions<4.14" ' in message
    assert all(f'"{requirement}"' in message for requirement in info["requirements"])


def test_the_library_and_downloader_ask_for_the_same_requirements() -> None:
    root = Path(loopflow.__file__).parent
    info = json.loads((root / "info.json").read_text())
    pyproject = (root.parent / "pyproject.toml").read_text()
    for requirement in info["requirements"]:
        assert f'"{requirement}"' in pyproject
