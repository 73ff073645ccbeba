"""LLM providers behind one method, :meth:`Provider.execute`.

The adapters import their SDKs (``openai``, ``anthropic``), which take most of a second
each, so they load on first use: ``from loopflow.providers import OpenAIProvider`` or
:func:`make_provider` import them then, and ``loopflow.providers.base`` stays cheap.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from loopflow.errors import LoopflowError
from loopflow.models import PROVIDER_NAMES, PROVIDERS, provider_spec
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

# Adapter class name -> its module, from the table's "module:Class" entries.
_LAZY = {
    **{spec.adapter.split(":")[1]: spec.adapter.split(":")[0] for spec in PROVIDERS.values()},
    "FakeProvider": "loopflow.providers.fake",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DEFAULT_TIMEOUT = 60.0


def timeout_from_environment() -> float:
    """Seconds one provider request may take: ``LOOPFLOW_TIMEOUT`` or 60."""
    raw = os.environ.get("LOOPFLOW_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise LoopflowError(f"LOOPFLOW_TIMEOUT must be a positive number of seconds, not {raw!r}.")
    return value


def make_provider(
    name: str,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float | None = None,
    max_retries: int = 2,
    encoded_bytes: int | None = None,
) -> Provider:
    """Build the adapter for ``name`` (a provider of :data:`loopflow.models.PROVIDERS`).

    Key and base URL default to the SDK's environment variables; the timeout of one
    attempt to ``LOOPFLOW_TIMEOUT`` seconds, else 60 (the SDK retries ``max_retries``
    times on timeouts, 429 and 5xx, with backoff). ``encoded_bytes`` bounds the memory
    of messages' encoded JSON (default :data:`~loopflow.providers.wire_json.
    DEFAULT_ENCODED_BYTES`). Raises :class:`ValueError`
    (a :class:`~loopflow.errors.MateError`) for any other name and
    :class:`LoopflowError` for a ``LOOPFLOW_TIMEOUT`` that is not a positive number.
    """
    if timeout is None:
        timeout = timeout_from_environment()
    module, _, class_name = provider_spec(name).adapter.partition(":")
    cls = getattr(importlib.import_module(module), class_name)
    sizes = {} if encoded_bytes is None else {"encoded_bytes": encoded_bytes}
    provider: Provider = cls(
        api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries, **sizes
    )
    return provider
