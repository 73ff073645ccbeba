"""The Anthropic adapter: the Messages API through the official ``anthropic`` SDK.

Anthropic takes the system prompt as a parameter, wants user and assistant turns to
alternate, and wants the first turn to be the user's; :func:`to_anthropic_messages`
does that conversion as a pure function. Only ``temperature`` is ever sent of the
sampling parameters (4.x models refuse it together with ``top_p``), and not to the
models that refuse it outright (Claude Opus 4.7 and later, every Claude 5.x: the model
table's reasoning family), which think within ``max_tokens`` and so get room beyond the
reply's length. A model the table does not know that refuses a temperature anyway is
retried without it (:class:`~loopflow.providers.sdk.SDKProvider`). Thinking blocks come
back apart from the text (``thinking`` blocks, ``thinking_delta`` events) and are never
read.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
from collections.abc import Collection, Sequence
from typing import Any, ClassVar, Optional

import anthropic
from anthropic.types import Message as AnthropicMessage

from loopflow.errors import (
    AuthenticationError,
    ContextTooLongError,
    MissingKeyError,
    ProviderError,
    RateLimitError,
    RefusedError,
    UnavailableError,
)
from loopflow.models import request_parameters
from loopflow.providers.base import Chunk, Message, Request, Usage
from loopflow.providers.sdk import (
    EventReader,
    SDKProvider,
    http_client,
    mapped_error,
    request_error,
)

NAME = "anthropic"

#: The user turn put in front of a history that starts with the mate's own message.
#: Dropping those leading assistant turns instead would lose what the next human message
#: most likely answers ("yes, do that"); a neutral placeholder keeps them.
LEADING_USER_PLACEHOLDER = "(The conversation continues.)"

_CONTEXT_PHRASES = ("prompt is too long", "exceed context limit", "context window")

#: A prompt-cache breakpoint (the 5-minute cache; the only type the API has besides a TTL).
EPHEMERAL: dict[str, str] = {"type": "ephemeral"}
#: The Messages API refuses a request with more blocks marked ``cache_control``.
MAX_BREAKPOINTS = 4


def to_anthropic_messages(
    messages: Sequence[Message], breakpoints: Collection[int] = ()
) -> list[dict[str, Any]]:
    """Turn the neutral history into Messages API turns.

    Messages with neither text nor images are skipped (the API rejects empty content).
    Consecutive messages of the same role merge into one turn: texts joined with a blank
    line, images kept in order before the text. A history that starts with an assistant
    turn gets :data:`LEADING_USER_PLACEHOLDER` as its first user turn. A turn without
    images has plain string content; one with images has image blocks then a text block.

    ``breakpoints`` are indexes into ``messages``: for each, the last turn made only of
    messages up to it gets a cache breakpoint (``cache_control``) on its last block, its
    content then being a list of blocks. A turn that also holds a later message is not
    marked (the next request may merge more into it), the turn before it is.
    """
    turns: list[tuple[str, list[str], list[str]]] = []
    lasts: list[int] = []  # per turn, the index of its last message
    for index, message in enumerate(messages):
        if not message.text.strip() and not message.images:
            continue
        if turns and turns[-1][0] == message.role:
            _, texts, images = turns[-1]
            lasts[-1] = index
        else:
            texts, images = [], []
            turns.append((message.role, texts, images))
            lasts.append(index)
        if message.text.strip():
            texts.append(message.text)
        images.extend(message.images)
    if turns and turns[0][0] == "assistant":
        turns.insert(0, ("user", [LEADING_USER_PLACEHOLDER], []))
        lasts.insert(0, -1)
    marked = {_turn_ending_by(lasts, index) for index in breakpoints if index >= 0}
    return [
        {"role": role, "content": _content(texts, images, turn in marked)}
        for turn, (role, texts, images) in enumerate(turns)
    ]


def _turn_ending_by(lasts: list[int], index: int) -> int:
    """The last turn whose messages all come at or before ``index`` (-1: none)."""
    return bisect.bisect_right(lasts, index) - 1


def _content(texts: list[str], images: list[str], cached: bool) -> str | list[dict[str, Any]]:
    text = "\n\n".join(texts)
    if not images and not cached:
        return text
    blocks: list[dict[str, Any]] = [
        {"type": "image", "source": _image_source(url)} for url in images
    ]
    if text or not blocks:
        blocks.append({"type": "text", "text": text})
    if cached:
        blocks[-1] = {**blocks[-1], "cache_control": EPHEMERAL}
    return blocks


def anthropic_body_parts(
    request: Request,
) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """``(system, messages)`` of the Messages API for ``request``, with prompt-cache
    breakpoints: the system prompt (one text block; None when empty), the last message
    of the stable prefix (:meth:`Request.stable_end`) and the newest turn, three at
    most (the API allows :data:`MAX_BREAKPOINTS`); none for a request that is not
    ``cached``.

    The newest turn's breakpoint writes the whole prompt to the cache, so the next turn
    of the conversation (which starts with this one) reads it all; the stable one still
    hits when the newest turn changes (merged with messages that came after it), and the
    system prompt's when the window moves on. Prompts shorter than the model's minimum
    (from 512 tokens on Opus 5 and the Fable models to 4,096 on Opus 4.5/4.6 and Haiku
    4.5) are simply not cached: no error, no extra cost.
    """
    if not request.cached:  # a one-off request: nothing to write to the cache
        plain = [{"type": "text", "text": request.system}] if request.system else None
        return plain, to_anthropic_messages(request.messages, ())
    system = (
        [{"type": "text", "text": request.system, "cache_control": EPHEMERAL}]
        if request.system
        else None
    )
    marks = (request.stable_end(), len(request.messages) - 1)
    return system, to_anthropic_messages(request.messages, marks)


def _image_source(url: str) -> dict[str, str]:
    """A URL source, or a base64 source for ``data:<media type>;base64,<data>`` URLs."""
    if url.startswith("data:") and ";base64," in url:
        media_type, data = url[len("data:") :].split(";base64,", 1)
        return {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "url", "url": url}


class AnthropicProvider(SDKProvider[anthropic.AsyncAnthropic]):
    """Anthropic's Messages API behind :meth:`execute`.

    ``api_key`` and ``base_url`` default to ``ANTHROPIC_API_KEY`` (or
    ``ANTHROPIC_AUTH_TOKEN``) and ``ANTHROPIC_BASE_URL``.
    """

    name = NAME
    required: ClassVar[frozenset[str]] = SDKProvider.required | {"max_tokens"}

    def _build_client(self) -> anthropic.AsyncAnthropic:
        key = self._api_key
        if key is None:
            key = os.environ.get("ANTHROPIC_API_KEY")
        if not key and not os.environ.get("ANTHROPIC_AUTH_TOKEN"):
            raise MissingKeyError("No Anthropic API key is configured.", NAME)
        return anthropic.AsyncAnthropic(
            api_key=key or None,
            base_url=self._base_url,
            timeout=self._timeout,
            max_retries=self._max_retries,
            http_client=http_client(anthropic),
        )

    def _body(
        self, client: anthropic.AsyncAnthropic, request: Request, stream: bool
    ) -> dict[str, Any]:
        """Messages API parameters (keyword arguments of ``messages.create``)."""
        accepted = request_parameters(NAME, request.model)
        system, messages = anthropic_body_parts(request)
        body: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "max_tokens": request.max_tokens + accepted.reasoning_headroom,
        }
        if system:
            body["system"] = system
        if request.temperature is not None and accepted.temperature:
            body["temperature"] = request.temperature
        if stream:
            body["stream"] = True
        return body

    def _post(self, client: anthropic.AsyncAnthropic, body: dict[str, Any], stream: bool) -> Any:
        """The SDK's post of ``body``: the message, or its stream of events' JSON."""
        # The client's own post (the SDK's documented raw call) rather than
        # messages.create: the body is wire format already, and create() runs every
        # message through the SDK's parameter transform (~9 ms for 300 messages). A
        # stream's events are read as their JSON (dicts): building the SDK's model of
        # each one, one per token or so, cost more than the rest of the turn. Retries,
        # errors and the stream's parsing stay the SDK's.
        # The client's own retries, given (a documented request option): left out, it is
        # a copy of the SDK's NOT_GIVEN default in every request's options. Not its
        # timeout: the SDK would then send it in its x-stainless-timeout header.
        options: anthropic.RequestOptions = {"max_retries": client.max_retries}
        if not stream:
            return client.post(
                "/v1/messages",
                **self._payload(client, body),
                cast_to=AnthropicMessage,
                options=options,
            )
        return client.post(
            "/v1/messages",
            **self._payload(client, body),
            cast_to=AnthropicMessage,
            options=options,
            stream=True,
            stream_cls=anthropic.AsyncStream[object],
        )

    def _one(self, response: Any) -> Chunk:
        return _message_chunk(response)

    def _reader(self) -> MessageEventReader:
        return MessageEventReader()

    def _mapped(self, exc: Exception) -> Optional[ProviderError]:
        return mapped_error(exc, anthropic, "Anthropic", NAME, _status_error)


class MessageEventReader(EventReader):
    """A streamed message's events (each one's JSON) read into text deltas, then the
    usage and stop reason. Thinking blocks' deltas are not read."""

    __slots__ = ("stop", "texts", "usage")

    def __init__(self) -> None:
        self.usage: Optional[Usage] = None
        self.stop: Optional[str] = None
        self.texts = 0

    def feed(self, event: Any) -> Optional[Chunk]:
        """A text delta's chunk (the first also carries the input billed so far)."""
        if not isinstance(event, dict):
            return None
        kind = event.get("type")
        if kind == "message_start":
            # Its output count (1) is no count: message_delta brings the real one.
            started = anthropic_usage(_get(event.get("message"), "usage"))
            self.usage = dataclasses.replace(started, output_tokens=0) if started else None
        elif kind == "content_block_delta":
            delta = event.get("delta")
            text = _get(delta, "text") if _get(delta, "type") == "text_delta" else None
            if isinstance(text, str):
                self.texts += 1
                # The first delta carries the input billed so far: a caller that stops
                # the stream counts it (message_delta never comes then).
                return Chunk(text, self.usage if self.texts == 1 else None)
        elif kind == "message_delta":
            self.stop = _get(event.get("delta"), "stop_reason") or self.stop
            self.usage = anthropic_usage(event.get("usage"), self.usage)
        return None

    def end(self) -> Chunk:
        """The usage and the stop reason (see :func:`_checked_stop`)."""
        return Chunk(usage=self.usage, finish_reason=_checked_stop(self.stop, bool(self.texts)))


def anthropic_usage(usage: Any, known: Optional[Usage] = None) -> Optional[Usage]:
    """The billed tokens of a Messages API ``usage`` object, merged over ``known``.

    ``input_tokens`` counts only the tokens after the last cache breakpoint; cache reads
    (``cache_read_input_tokens``) and writes (``cache_creation_input_tokens``) are input
    too, and kept apart for their prices. A streamed reply reports its input in
    ``message_start`` and its output (cumulative, with any input fields, which then win
    field by field) in ``message_delta``: pass the first's result as ``known``. None
    (nothing reported) leaves ``known`` as it is.
    """
    if usage is None:
        return known
    base = known or Usage()
    fresh = _field(usage, "input_tokens", base.uncached_input_tokens)
    read = _field(usage, "cache_read_input_tokens", base.cached_input_tokens)
    written = _field(usage, "cache_creation_input_tokens", base.cache_write_tokens)
    output = _field(usage, "output_tokens", base.output_tokens)
    return Usage(fresh + read + written, output, read, written)


def _field(usage: Any, name: str, default: int) -> int:
    """``usage.<name>`` (the SDK's model) or ``usage[name]`` (a streamed event's JSON)
    when the provider sent a number, else ``default``."""
    value = _get(usage, name)
    return value if isinstance(value, int) else default


def _get(value: Any, name: str) -> Any:
    """A field of a JSON object (dict) or of the SDK's model; None when missing."""
    if isinstance(value, dict):
        return value.get(name)
    return getattr(value, name, None)


def _checked_stop(stop: Optional[str], has_text: bool) -> str:
    """The stop reason; a stream with text that ended cleanly without one (a gateway's
    end) is finished, one with neither was cut off before it began."""
    if not stop:
        if not has_text:
            raise UnavailableError("Anthropic's reply ended before it was complete.", NAME)
        return "end_turn"
    if stop == "refusal":
        raise RefusedError("Anthropic refused to answer this request.", NAME)
    return stop


def _message_chunk(message: Any) -> Chunk:
    if not isinstance(message, AnthropicMessage):
        raise UnavailableError("Anthropic sent a response loopflow could not read.", NAME)
    text = "".join(block.text for block in message.content if block.type == "text")
    stop = _checked_stop(message.stop_reason, bool(text))
    return Chunk(text, anthropic_usage(getattr(message, "usage", None)), stop)


def _status_error(exc: anthropic.APIError) -> ProviderError:
    """Map an HTTP error, or an ``error`` event inside a stream (status 200), by type."""
    status = getattr(exc, "status_code", None)
    kind, message = _error_fields(exc)
    if status == 401 or kind == "authentication_error":
        return AuthenticationError("Anthropic rejected the API key.", NAME)
    if status == 403 or kind == "permission_error":
        return AuthenticationError("Anthropic refused access with this API key.", NAME)
    too_long = any(phrase in message.lower() for phrase in _CONTEXT_PHRASES)
    if status == 413 or kind == "request_too_large" or too_long:
        return ContextTooLongError("The conversation is too long for this Anthropic model.", NAME)
    if status == 429 or kind == "rate_limit_error":
        return RateLimitError("Anthropic is rate limiting requests; try again shortly.", NAME)
    if isinstance(exc, anthropic.APIResponseValidationError):
        return UnavailableError("Anthropic sent a response loopflow could not read.", NAME)
    if status is None or not 400 <= status < 500:
        return UnavailableError("Anthropic is unavailable right now.", NAME)
    return request_error("Anthropic", NAME, status, message)


def _error_fields(exc: anthropic.APIError) -> tuple[str, str]:
    """``(error type, message)`` from ``{"type": "error", "error": {...}}``."""
    body = exc.body
    error = body.get("error") if isinstance(body, dict) else None
    fields = error if isinstance(error, dict) else {}
    kind = fields.get("type") if isinstance(fields.get("type"), str) else ""
    message = fields.get("message") if isinstance(fields.get("message"), str) else exc.message
    return str(kind), str(message)
