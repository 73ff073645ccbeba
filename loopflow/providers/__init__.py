"""LLM providers behind one method, :meth:`Provider.execute`.

The adapters import their SDKs (``openai``, ``anthropic``), which take most of a second
each, so they load on first use: ``from loopflow.providers import OpenAIProvider`` or
:func:`make_provider` import them then, and ``loopflow.providers.base`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from loopflow.providers.base import Chunk, Message, Provider, Request, Role, Usage

if TYPE_CHECKING:
    from loopflow.providers.anthropic import AnthropicProvider
    from loopflow.providers.fake import FakeProvider
    from loopflow.providers.openai import OpenAIProvider

__all__ = [
    "PROVIDER_NAMES",
    "AnthropicProvider",
    "Chunk",
    "FakeProvider",
    "Message",
    "OpenAIProvider",
    "Provider",
    "Request",
    "Role",
    "Usage",
    "make_provider",
]

#: The providers a mate may name.
PROVIDER_NAMES = ("openai", "anthropic")

_LAZY = {
    "OpenAIProvider": "loopflow.providers.openai",
    "AnthropicProvider": "loopflow.providers.anthropic",
    "FakeProvider": "loopflow.providers.fake",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_provider(
    name: str,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = 60.0,
    max_retries: int = 2,
) -> Provider:
    """Build the adapter for ``name`` (``"openai"`` or ``"anthropic"``).

    Key and base URL default to the SDK's environment variables. Raises
    :class:`ValueError` for any other name.
    """
    if name not in PROVIDER_NAMES:
        raise ValueError(f"unknown provider {name!r} (expected one of {', '.join(PROVIDER_NAMES)})")
    cls = __getattr__("OpenAIProvider" if name == "openai" else "AnthropicProvider")
    provider: Provider = cls(
        api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
    )
    return provider
