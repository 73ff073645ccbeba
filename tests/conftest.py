"""Shared pytest fixtures. ``tests/`` has no ``__init__.py``; pytest puts this folder on
``sys.path``, so test modules can ``import fake_llm``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fake_llm import FakeLLMServer


@pytest.fixture
async def llm_server() -> AsyncIterator[FakeLLMServer]:
    """A fake OpenAI + Anthropic HTTP server on 127.0.0.1, in the test's event loop."""
    server = FakeLLMServer()
    await server.start()
    yield server
    await server.stop()
