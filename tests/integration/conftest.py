"""Fixtures for the adapter tests: ``wire`` is parametrised over both providers, so a test
that asks for it (or for ``provider``, the adapter built on it) runs once per provider. A
module about one provider overrides ``wire`` with ``WIRES[<name>]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from adapter_wires import WIRES, Wire
from fake_llm import FakeLLMServer

from loopflow.providers.sdk import SDKProvider


@pytest.fixture(params=sorted(WIRES))
def wire(request: pytest.FixtureRequest) -> Wire:
    """Each provider in turn; a module about one provider overrides this fixture."""
    return WIRES[request.param]


@pytest.fixture
async def provider(wire: Wire, llm_server: FakeLLMServer) -> AsyncIterator[SDKProvider[Any]]:
    """``wire``'s adapter against the fake server, with a 0.3 s timeout (a hang fails
    fast) and one retry (so a test can count it: two requests for one call)."""
    adapter = wire.build(llm_server, timeout=0.3, max_retries=1)
    yield adapter
    await adapter.aclose()
