"""The two provider adapters as the tests see them: one :class:`Wire` per provider.

What differs between the providers' wires (where the key goes, where the system prompt
goes, the finish reason of a complete reply, the environment variables) is a field or
method of :class:`Wire`, so a test of the adapters' shared contract reads the same for
both (the ``wire`` and ``provider`` fixtures in ``conftest.py`` run it once per provider).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from fake_llm import FakeLLMServer, RecordedRequest

from loopflow.providers.base import Chunk, Message, Request
from loopflow.providers.sdk import SDKProvider


@dataclass(frozen=True)
class Wire:
    """One provider as the tests see it: its adapter and what its wire looks like."""

    name: str  # loopflow's provider name, as ``Provider.name``
    title: str  # how loopflow's error messages name it
    key: str  # the API key the tests use (never to appear in an error)
    model: str  # a model name with no special rules in the model table
    finished: str  # the finish reason of a complete reply
    path: str  # the endpoint the adapter posts to
    key_variables: tuple[str, ...]  # environment variables that give the SDK a key
    base_url_variable: str
    reports_cache_writes: bool  # usage carries the tokens written to the prompt cache
    bills_input_first: bool  # a stream's first delta carries the input billed so far

    def adapter_class(self) -> type[SDKProvider[Any]]:
        """The adapter's class (imported here: the SDKs take a while to import)."""
        if self.name == "openai":
            from loopflow.providers.openai import OpenAIProvider

            return OpenAIProvider
        from loopflow.providers.anthropic import AnthropicProvider

        return AnthropicProvider

    def base_url(self, server: FakeLLMServer) -> str:
        """The ``base_url`` that points this provider's SDK at ``server``."""
        return server.openai_base_url if self.name == "openai" else server.anthropic_base_url

    def build(self, server: FakeLLMServer, **options: Any) -> SDKProvider[Any]:
        """The adapter, with :attr:`key`, pointed at ``server``; ``options`` are the
        adapter's (``timeout`` in seconds, ``max_retries``)."""
        return self.adapter_class()(api_key=self.key, base_url=self.base_url(server), **options)

    def sent_key(self, sent: RecordedRequest) -> Optional[str]:
        """The API key a recorded request carried, None if none."""
        if self.name == "openai":
            auth = sent.headers.get("authorization", "")
            return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        return sent.headers.get("x-api-key")

    def sent_system(self, body: dict[str, Any]) -> Optional[str]:
        """The system prompt's text in a recorded request body, None if none was sent:
        OpenAI's is the first message, Anthropic's a parameter of its own."""
        if self.name == "openai":
            system = [m["content"] for m in body["messages"] if m["role"] == "system"]
            return "\n".join(system) if system else None
        if "system" not in body:
            return None
        blocks = body["system"]
        return blocks if isinstance(blocks, str) else "".join(b["text"] for b in blocks)

    def request(self, *messages: Message, system: str = "You are Maya.", **kw: Any) -> Request:
        """A request for :attr:`model`; by default one message, ``Alice: hello``."""
        msgs = messages or (Message("user", "Alice: hello"),)
        return Request(model=self.model, system=system, messages=msgs, **kw)


WIRES = {
    "openai": Wire(
        name="openai",
        title="OpenAI",
        key="sk-test-very-secret-0123456789",
        model="gpt-test",
        finished="stop",
        path="/v1/chat/completions",
        key_variables=("OPENAI_API_KEY",),
        base_url_variable="OPENAI_BASE_URL",
        reports_cache_writes=False,
        bills_input_first=False,
    ),
    "anthropic": Wire(
        name="anthropic",
        title="Anthropic",
        key="sk-ant-test-very-secret-0123456789",
        model="claude-test",
        finished="end_turn",
        path="/v1/messages",
        key_variables=("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"),
        base_url_variable="ANTHROPIC_BASE_URL",
        reports_cache_writes=True,
        bills_input_first=True,  # message_start's input, for a caller that stops early
    ),
}


async def collect(provider: SDKProvider[Any], request: Request, stream: bool) -> list[Chunk]:
    """Every chunk ``provider`` yields for ``request``."""
    return [chunk async for chunk in provider.execute(request, stream=stream)]
