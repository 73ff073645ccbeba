"""The OpenAI adapter: Chat Completions through the official ``openai`` SDK.

It also serves OpenAI-compatible servers (Ollama, vLLM, LM Studio, OpenRouter, LiteLLM)
through ``base_url`` or ``OPENAI_BASE_URL``, so the wire format stays on the widely
supported subset: string content unless there are images, no ``name`` field (its charset
rejects many Discord display names; speakers are prefixes in the text instead). Which
output-token field and whether a temperature is sent comes from the model table
(:func:`loopflow.models.request_parameters`); a stream that ends cleanly after text is a
finished reply even without a finish reason or ``data: [DONE]`` (LiteLLM, LocalAI).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any, Optional

import openai
from openai.types.chat import ChatCompletion

from loopflow.errors import (
    AuthenticationError,
    ContextTooLongError,
    MissingKeyError,
    ProviderError,
    RateLimitError,
    RefusedError,
    UnavailableError,
)
from loopflow.models import provider_spec, request_parameters
from loopflow.providers.base import Chunk, Message, Request, Usage
from loopflow.providers.openai_stream import JSONFields, PooledStream
from loopflow.providers.sdk import (
    EventReader,
    SDKProvider,
    http_client,
    mapped_error,
    request_error,
)

NAME = "openai"


def to_openai_messages(system: str, messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Turn the neutral history into Chat Completions messages.

    The system prompt becomes a first ``system`` message (omitted when empty). A message
    with images becomes content parts (text, then one ``image_url`` part per image);
    assistant messages cannot carry images in this API, so theirs are dropped.
    """
    wire: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for message in messages:
        if message.images and message.role == "user":
            parts: list[dict[str, Any]] = []
            if message.text:
                parts.append({"type": "text", "text": message.text})
            parts += [{"type": "image_url", "image_url": {"url": url}} for url in message.images]
            wire.append({"role": message.role, "content": parts})
        else:
            wire.append({"role": message.role, "content": message.text})
    return wire


def cache_parameters(request: Request, host: str) -> dict[str, Any]:
    """``{"prompt_cache_key": ...}`` for a request with a ``cache_key`` sent to OpenAI's
    own API (:attr:`~loopflow.models.ProviderSpec.official_hosts`), else nothing:
    compatible servers may refuse a field they do not know.

    OpenAI caches every prompt's stable prefix by itself (1024 tokens or more); the key
    routes one conversation's requests to the same cache, so conversations of a mate
    that share its system prompt do not push each other out. The key is a hash of
    ``cache_key``: the conversation's Discord ids are not sent.
    """
    if not request.cache_key or host not in provider_spec(NAME).official_hosts:
        return {}
    digest = hashlib.blake2b(request.cache_key.encode(), digest_size=16).hexdigest()
    return {"prompt_cache_key": f"loopflow-{digest}"}


class OpenAIProvider(SDKProvider[openai.AsyncOpenAI]):
    """OpenAI Chat Completions (and compatible servers) behind :meth:`execute`.

    ``api_key`` and ``base_url`` default to ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``.
    """

    name = NAME

    def _build_client(self) -> openai.AsyncOpenAI:
        key = self._api_key if self._api_key is not None else os.environ.get("OPENAI_API_KEY")
        if not key:
            raise MissingKeyError("No OpenAI API key is configured.", NAME)
        return openai.AsyncOpenAI(
            api_key=key,
            base_url=self._base_url,
            timeout=self._timeout,
            max_retries=self._max_retries,
            http_client=http_client(openai),
        )

    def _body(self, client: openai.AsyncOpenAI, request: Request, stream: bool) -> dict[str, Any]:
        """Chat Completions parameters; reasoning families get ``max_completion_tokens``
        (with room to reason) and no temperature, whatever the host."""
        host = client.base_url.host  # an httpx.URL, parsed once by the SDK
        accepted = request_parameters(NAME, request.model, host)
        body: dict[str, Any] = {
            "model": request.model,
            "messages": to_openai_messages(request.system, request.messages),
            accepted.token_limit: request.max_tokens + accepted.reasoning_headroom,
            **cache_parameters(request, host),
        }
        if request.temperature is not None and accepted.temperature:
            body["temperature"] = request.temperature
        if request.json_mode:
            body["response_format"] = {"type": "json_object"}
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        return body

    def _post(self, client: openai.AsyncOpenAI, body: dict[str, Any], stream: bool) -> Any:
        """The SDK's post of ``body``: the completion, or its stream of chunks' JSON."""
        # client.post (the SDK's documented way to call an endpoint with a raw body)
        # rather than chat.completions.create: the messages are already in wire format,
        # and create() runs each one through the SDK's parameter transform, which costs
        # ~0.15 ms a message, i.e. tens of milliseconds per turn in a long conversation.
        # Retries, errors and stream parsing stay the SDK's.
        # The client's own timeout and retries, given (documented request options): each
        # left out is a copy of the SDK's NOT_GIVEN default in every request's options.
        options: openai.RequestOptions = {
            "timeout": client.timeout,
            "max_retries": client.max_retries,
        }
        if not stream:
            return client.post(
                "/chat/completions",
                **self._payload(client, body),
                cast_to=ChatCompletion,
                options=options,
            )
        return client.post(
            "/chat/completions",
            **self._payload(client, body),
            cast_to=ChatCompletion,
            options=options,
            stream=True,
            stream_cls=PooledStream,  # the SDK's, giving its connection back
        )

    def _one(self, response: Any) -> Chunk:
        return _completion_chunk(response)

    def _reader(self) -> ChunkReader:
        return ChunkReader()

    def _mapped(self, exc: Exception) -> Optional[ProviderError]:
        return mapped_error(exc, openai, "OpenAI", NAME, _status_error)


class ChunkReader(EventReader):
    """A streamed completion's chunks (each one's JSON, a dict: building the SDK's model
    of every chunk, one per token or so, cost more than the rest of the turn) read into
    text deltas, then the usage (the last chunk's, ``include_usage``) and finish reason.
    """

    __slots__ = ("finish", "texts", "usage")

    def __init__(self) -> None:
        self.usage: Optional[Usage] = None
        self.finish: Optional[str] = None
        self.texts = 0

    def feed(self, event: Any) -> Optional[Chunk]:
        """The chunk's text, if any; ``RefusedError`` for a refusal."""
        if not isinstance(event, dict):
            return None
        if isinstance(event.get("usage"), dict):  # the last chunk (include_usage)
            self.usage = openai_usage(JSONFields(event["usage"]))
        # Compatible servers may omit ``choices`` or ``delta`` in the last chunks.
        # Reasoning deltas (``reasoning_content``, ``reasoning``) are not read.
        text = ""
        for choice in event.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                if delta.get("refusal"):
                    raise RefusedError(_REFUSED, NAME)
                content = delta.get("content")
                if content and isinstance(content, str):
                    self.texts += 1
                    text += content
            self.finish = choice.get("finish_reason") or self.finish  # "" is no reason
        return Chunk(text) if text else None

    def end(self) -> Chunk:
        """The usage and the finish reason (see :func:`_checked_finish`)."""
        return Chunk(usage=self.usage, finish_reason=_checked_finish(self.finish, bool(self.texts)))


_REFUSED = "OpenAI refused to answer this request."


def openai_usage(usage: Any) -> Optional[Usage]:
    """The billed tokens of a Chat Completions ``usage`` object, None without one.

    ``prompt_tokens`` counts every input token; ``prompt_tokens_details.cached_tokens``
    (absent, or null, on older models and compatible servers) is the part read from the
    prompt cache, and ``cache_write_tokens`` the part written to it (reported, and billed
    at 1.25 times the input price, from GPT-5.6 on: developers.openai.com, prompt
    caching). Reasoning tokens are part of ``completion_tokens``, billed as output.
    """
    if usage is None:
        return None
    prompt = getattr(usage, "prompt_tokens", None) or 0
    details = getattr(usage, "prompt_tokens_details", None)
    cached = min(_count(details, "cached_tokens"), prompt)
    written = min(_count(details, "cache_write_tokens"), prompt - cached)
    output = getattr(usage, "completion_tokens", None) or 0
    return Usage(prompt, output, cached_input_tokens=cached, cache_write_tokens=written)


def _count(details: Any, name: str) -> int:
    """``details.<name>`` when the server sent a count (the SDK keeps fields it does not
    declare), else 0."""
    value = getattr(details, name, None)
    return value if type(value) is int and value > 0 else 0


def _checked_finish(finish: Optional[str], has_text: bool) -> str:
    """The finish reason; a reply with text but none (a gateway's clean end) is finished,
    one with neither was cut off before it began."""
    if not finish:
        if not has_text:
            raise UnavailableError("OpenAI's reply ended before it was complete.", NAME)
        return "stop"
    if finish == "content_filter":
        raise RefusedError(_REFUSED, NAME)
    return finish


def _completion_chunk(completion: Any) -> Chunk:
    if not isinstance(completion, ChatCompletion) or not completion.choices:
        raise UnavailableError("OpenAI sent a response loopflow could not read.", NAME)
    choice = completion.choices[0]
    if choice.message.refusal:
        raise RefusedError(_REFUSED, NAME)
    usage = openai_usage(completion.usage)
    text = choice.message.content or ""
    return Chunk(text, usage, _checked_finish(choice.finish_reason, bool(text)))


def _status_error(exc: openai.APIError) -> ProviderError:
    """Map an HTTP error, or an error event inside a stream, by status and error code."""
    status = getattr(exc, "status_code", None)
    message = _detail(exc)
    if status == 401:
        return AuthenticationError("OpenAI rejected the API key.", NAME)
    if status == 403:
        return AuthenticationError("OpenAI refused access with this API key.", NAME)
    if exc.code == "context_length_exceeded" or "maximum context length" in message.lower():
        return ContextTooLongError("The conversation is too long for this OpenAI model.", NAME)
    if status == 429 or exc.code == "rate_limit_exceeded":
        if exc.code == "insufficient_quota":
            return RateLimitError("The OpenAI account has run out of quota.", NAME)
        return RateLimitError("OpenAI is rate limiting requests; try again shortly.", NAME)
    if isinstance(exc, openai.APIResponseValidationError):
        return UnavailableError("OpenAI sent a response loopflow could not read.", NAME)
    if status is None or status >= 500:
        return UnavailableError("OpenAI is unavailable right now.", NAME)
    refused = exc.code in ("unsupported_parameter", "unsupported_value")
    param = exc.param if refused and isinstance(exc.param, str) else ""
    return request_error("OpenAI", NAME, status, message, param)


def _detail(exc: openai.APIError) -> str:
    """The provider's own error message (the SDK's ``body`` is the error object)."""
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    return message if isinstance(message, str) and message else exc.message
