"""Fake OpenAI and Anthropic HTTP servers on 127.0.0.1, for the real SDKs.

One aiohttp app speaks both wire protocols: OpenAI's ``POST /v1/chat/completions`` and
Anthropic's ``POST /v1/messages``, each as JSON or as server-sent events. Point an SDK
at it with ``base_url=server.openai_base_url`` (``.../v1``) or
``base_url=server.anthropic_base_url`` (the SDK adds ``/v1/messages`` itself).

Each request takes the next scripted behaviour from a queue (see :func:`reply`,
:func:`refusal`, :func:`error`, :func:`context_too_long`, :func:`hang`,
:func:`malformed`); a behaviour may name the ``provider`` it is meant for, and a
``gate``: the answer then waits until the test calls ``release(gate)`` (a provider
that is "thinking" for exactly as long as a test needs). With an empty queue the
server answers ``echo: <last user text>`` (or the fixed default reply given). A memory
fold (system prompt ``FOLD_INSTRUCTION``, sent beside the turns) takes no scripted
behaviour: it gets ``memory_fakes.summarise``'s JSON summary of its input (every
``Name: I have/am/prefer/live/work ...`` line kept, each also a note). Every
request is recorded (path, headers, JSON body) with how it ended: a stream the
client closed early is ``"disconnected"``.

Like the real APIs, the server first refuses what they refuse (a missing key, a
reasoning model's ``max_tokens``, Anthropic's temperature above 1, turns that do not
alternate, ...: see ``fake_llm_checks.py``); a refused request takes no behaviour.

Three ways to run it:

* in a test's event loop: ``server = FakeLLMServer(); await server.start()`` (the
  ``llm_server`` fixture in ``tests/conftest.py`` does this);
* in a background thread: ``with start_in_thread() as handle: handle.base_url``;
* as a process: ``python tests/fake_llm.py --port 0 --reply TEXT`` prints
  ``FAKE_LLM_URL=http://127.0.0.1:<port>`` and serves until SIGTERM/SIGINT.

Out of process, ``POST /_control/enqueue`` (a behaviour or a list of them),
``GET /_control/requests``, ``POST /_control/release`` (``{"gate": name}``) and
``POST /_control/reset`` drive it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Callable, NamedTuple, Optional

from aiohttp import web
from fake_llm_checks import Refusal, anthropic_refusal, openai_refusal
from memory_fakes import FOLD_INSTRUCTION, summarise

# ---------------------------------------------------------------- behaviours


@dataclass
class Behaviour:
    """What the server does with one request. ``/_control/enqueue`` takes these fields as JSON
    (``{"kind": "reply", "text": "hi"}``); in Python use the constructors below."""

    kind: str = "reply"  # reply | refusal | error | context_too_long | hang | malformed
    text: str = ""
    deltas: Optional[list[str]] = None  # stream exactly these (default: word by word)
    delay: float = 0.0  # before each delta, or before a JSON reply
    finish: Optional[str] = None  # the wire's finish/stop reason, e.g. "content_filter" or ""
    reasoning: Optional[str] = None  # reasoning sent before the text, outside of it
    reasoning_field: str = "reasoning_content"  # OpenAI delta/message field ("reasoning")
    ending: str = "done"  # a stream's end: "done" (the API's own) or "gateway" (see reply)
    status: int = 500
    message: Optional[str] = None  # error message (default: the provider's usual words)
    error_type: Optional[str] = None
    code: Optional[str] = None
    param: Optional[str] = None  # OpenAI's ``param`` of an error (the refused parameter)
    retry_after: Optional[float] = None
    in_stream: bool = False  # error as an SSE event after one delta, for streams
    seconds: float = 30.0  # how long a hang lasts (the server's stop ends it sooner)
    after_text: Optional[str] = None  # a streamed hang sends this first
    truncated: bool = False  # malformed: drop the connection midway instead of garbage
    provider: Optional[str] = None  # "openai" / "anthropic" / None for either
    gate: Optional[str] = None  # wait for ``release(gate)`` before answering
    cached: int = 0  # input tokens to report as read from the prompt cache
    cache_write: int = 0  # Anthropic: input tokens to report as written to the cache
    # False: report no usage at all (some compatible servers); "input": Anthropic streams
    # message_start's usage but no usage in message_delta (a gateway that drops it).
    usage: Any = True
    linger: float = 0.0  # a stream's body stays open this long after its last event


def reply(text: str, **options: Any) -> Behaviour:
    """Answer ``text``; options: ``deltas``, ``delay``, ``finish``, ``provider``,
    ``cached`` and ``cache_write`` (the prompt-cache tokens to report: OpenAI's
    ``prompt_tokens_details.cached_tokens``, Anthropic's ``cache_read_input_tokens`` and
    ``cache_creation_input_tokens``), ``usage=False`` (report none),
    ``reasoning`` (OpenAI: ``reasoning_content`` deltas, or the field named by
    ``reasoning_field``; Anthropic: a thinking block) and ``ending="gateway"``: a stream
    ended the way LiteLLM or LocalAI end it, with no finish reason, a last usage chunk
    whose ``choices`` are empty and no ``data: [DONE]`` (Anthropic: no stop reason and
    no ``message_stop``)."""
    return Behaviour("reply", text, **options)


def refusal(text: str = "I can't help with that.", **options: Any) -> Behaviour:
    """Refuse: OpenAI's ``refusal`` field, Anthropic's ``stop_reason: "refusal"``."""
    return Behaviour("refusal", text, **options)


def error(status: int, message: Optional[str] = None, **options: Any) -> Behaviour:
    """Answer HTTP ``status`` with the provider's real error body shape.

    Options: ``error_type``, ``code``, ``param``, ``retry_after``, ``in_stream``,
    ``provider``. A 429 sends ``retry-after: 0.05`` unless told otherwise (a float, which
    the SDKs accept, so tests that retry stay fast).
    """
    options.setdefault("retry_after", 0.05 if status == 429 else None)
    return Behaviour("error", status=status, message=message, **options)


def context_too_long(**options: Any) -> Behaviour:
    """A 400 saying the prompt exceeds the context window, as each provider words it."""
    return Behaviour("context_too_long", **options)


def hang(seconds: float = 30.0, **options: Any) -> Behaviour:
    """Say nothing for ``seconds``; with ``after_text``, a stream stalls after sending it."""
    return Behaviour("hang", seconds=seconds, **options)


def malformed(**options: Any) -> Behaviour:
    """Send broken JSON; with ``truncated=True``, a stream whose connection drops after
    one delta (the HTTP body never ends properly)."""
    return Behaviour("malformed", **options)


class Billing(NamedTuple):
    """The tokens a reply reports: ``prompt`` (all input), ``completion``, and the parts of
    ``prompt`` read from (``cached``) and written to (``written``) the prompt cache."""

    prompt: int
    completion: int
    cached: int = 0
    written: int = 0


@dataclass
class RecordedRequest:
    """One request the server received; header names are lower-cased.

    ``outcome``: ``"answering"`` until the answer is sent, then ``"complete"``, or
    ``"disconnected"`` when the client closed a stream before its end.
    """

    path: str
    headers: dict[str, str]
    json: Any
    outcome: str = "answering"
    connection: Any = None  # the client's (host, port): one per TCP connection


# ---------------------------------------------------------------- wire formats


def _sse(data: Any, event: Optional[str] = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    body = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {body}\n\n".encode()


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class _OpenAIWire:
    name = "openai"
    # status: (message, type, code), as OpenAI words them
    errors = {
        400: ("Invalid request.", "invalid_request_error", None),
        401: (
            "Incorrect API key provided: sk-fake***1234.",
            "invalid_request_error",
            "invalid_api_key",
        ),
        403: ("Project does not have access to this model.", "invalid_request_error", None),
        404: ("The model does not exist.", "invalid_request_error", "model_not_found"),
        429: ("Rate limit reached for requests per min (RPM).", "requests", "rate_limit_exceeded"),
        500: ("The server had an error while processing your request.", "server_error", None),
    }
    context = (
        "This model's maximum context length is 128000 tokens. However, your messages "
        "resulted in 130000 tokens. Please reduce the length of the messages.",
        "invalid_request_error",
        "context_length_exceeded",
    )

    def error_body(
        self, message: str, kind: str, code: Optional[str], param: Optional[str] = None
    ) -> Any:
        return {"error": {"message": message, "type": kind, "param": param, "code": code}}

    def refusal(self, server: FakeLLMServer, headers: dict[str, str], body: Any) -> Any:
        refused = openai_refusal(headers, body, server.reasoning_models)
        if refused is None and server.rejects_json_mode and "response_format" in body:
            # A compatible server without JSON mode, in words that name no refusal.
            return Refusal(400, "Invalid value for 'response_format': this server writes text.")
        return refused

    def texts(self, body: Any) -> list[tuple[str, str]]:
        return [(m.get("role", ""), _text_of(m.get("content"))) for m in body.get("messages", [])]

    def _object(self, kind: str, choices: list[Any], **extra: Any) -> dict[str, Any]:
        return {"id": "chatcmpl-fake", "object": kind, "created": int(time.time()),
                "model": "fake", "choices": choices, **extra}  # fmt: skip

    def _usage(self, usage: Billing) -> dict[str, Any]:
        prompt, completion, cached, _ = usage
        wire: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                                "total_tokens": prompt + completion}  # fmt: skip
        if cached:  # part of prompt_tokens, as OpenAI reports it
            wire["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
        return wire

    def message(
        self, behaviour: Behaviour, refused: bool, finish: str, usage: Optional[Billing]
    ) -> Any:
        text = behaviour.text
        msg = {"role": "assistant", "content": None if refused else text,
               "refusal": text if refused else None}  # fmt: skip
        if behaviour.reasoning is not None:
            msg[behaviour.reasoning_field] = behaviour.reasoning
        choice = {"index": 0, "message": msg, "logprobs": None, "finish_reason": finish}
        if usage is None:
            return self._object("chat.completion", [choice])
        return self._object("chat.completion", [choice], usage=self._usage(usage))

    def _chunk(self, delta: dict[str, Any], finish: Optional[str] = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return _sse(self._object("chat.completion.chunk", [choice]))

    def head(self, usage: Optional[Billing]) -> list[bytes]:
        return [self._chunk({"role": "assistant", "content": ""})]

    def reasoning(self, behaviour: Behaviour) -> list[bytes]:
        words = re.split(r"(?<=\s)(?=\S)", behaviour.reasoning or "")
        return [self._chunk({behaviour.reasoning_field: w, "content": None}) for w in words if w]

    def delta(self, text: str, refused: bool) -> bytes:
        return self._chunk({"refusal": text} if refused else {"content": text})

    def tail(
        self, body: Any, behaviour: Behaviour, finish: str, usage: Optional[Billing]
    ) -> list[bytes]:
        usage_only = (
            [_sse(self._object("chat.completion.chunk", [], usage=self._usage(usage)))]
            if usage is not None
            else []
        )
        if behaviour.ending == "gateway":  # no finish reason, no [DONE]: just the usage
            return usage_only
        events = [self._chunk({}, finish)]
        if (body.get("stream_options") or {}).get("include_usage"):
            events += usage_only
        return [*events, _sse("[DONE]")]

    def error_event(self, payload: Any) -> bytes:
        return _sse(payload)

    def garbage(self) -> bytes:
        return b'data: {"id": "chatcmpl-fake", "choices": [{"delta": {"content": "tr\n\n'

    def finish(self, finish: Optional[str], refused: bool) -> str:
        return "stop" if finish is None else finish


class _AnthropicWire:
    name = "anthropic"
    # status: (message, type, code), as Anthropic words them (it has no codes)
    errors = {
        400: ("Invalid request.", "invalid_request_error", None),
        401: ("invalid x-api-key", "authentication_error", None),
        403: ("Your API key does not have permission to use this.", "permission_error", None),
        404: ("model: not found", "not_found_error", None),
        429: ("Number of requests has exceeded your rate limit.", "rate_limit_error", None),
        500: ("Internal server error", "api_error", None),
        529: ("Overloaded", "overloaded_error", None),
    }
    context = ("prompt is too long: 208310 tokens > 200000 maximum", "invalid_request_error", None)

    def error_body(
        self, message: str, kind: str, code: Optional[str], param: Optional[str] = None
    ) -> Any:
        error = {"type": kind, "message": message}
        return {"type": "error", "error": error, "request_id": "req_fake"}

    def refusal(self, server: FakeLLMServer, headers: dict[str, str], body: Any) -> Any:
        return anthropic_refusal(headers, body)

    def texts(self, body: Any) -> list[tuple[str, str]]:
        turns = [(m.get("role", ""), _text_of(m.get("content"))) for m in body.get("messages", [])]
        return [("system", _text_of(body.get("system", ""))), *turns]

    def _message(self, content: list[Any], stop: Optional[str], usage: Optional[Billing]) -> Any:
        message = {"id": "msg_fake", "type": "message", "role": "assistant", "model": "fake",
                   "content": content, "stop_reason": stop, "stop_sequence": None}  # fmt: skip
        if usage is not None:
            prompt, completion, cached, written = usage
            # input_tokens are only those after the last breakpoint, as Anthropic counts.
            message["usage"] = {"input_tokens": max(0, prompt - cached - written),
                                "cache_creation_input_tokens": written,
                                "cache_read_input_tokens": cached,
                                "output_tokens": completion}  # fmt: skip
        return message

    def message(
        self, behaviour: Behaviour, refused: bool, finish: str, usage: Optional[Billing]
    ) -> Any:
        text = behaviour.text
        content = [] if refused or not text else [{"type": "text", "text": text}]
        if behaviour.reasoning is not None:
            thinking = {"type": "thinking", "thinking": behaviour.reasoning, "signature": "sig"}
            content.insert(0, thinking)
        return self._message(content, finish, usage)

    def _event(self, kind: str, **fields: Any) -> bytes:
        return _sse({"type": kind, **fields}, kind)

    def head(self, usage: Optional[Billing]) -> list[bytes]:
        block = {"type": "text", "text": ""}
        started = usage._replace(completion=1) if usage is not None else None
        return [
            self._event("message_start", message=self._message([], None, started)),
            self._event("content_block_start", index=0, content_block=block),
            self._event("ping"),
        ]

    def reasoning(self, behaviour: Behaviour) -> list[bytes]:
        """A thinking block streamed before the text block (which keeps index 0 here)."""
        block = {"type": "thinking", "thinking": ""}
        delta = {"type": "thinking_delta", "thinking": behaviour.reasoning or ""}
        return [
            self._event("content_block_start", index=1, content_block=block),
            self._event("content_block_delta", index=1, delta=delta),
            self._event("content_block_stop", index=1),
        ]

    def delta(self, text: str, refused: bool) -> bytes:
        delta = {"type": "text_delta", "text": text}
        return self._event("content_block_delta", index=0, delta=delta)

    def tail(
        self, body: Any, behaviour: Behaviour, finish: str, usage: Optional[Billing]
    ) -> list[bytes]:
        gateway = behaviour.ending == "gateway"
        delta = {"stop_reason": None if gateway else finish, "stop_sequence": None}
        billed = {"usage": {"output_tokens": usage.completion}} if usage is not None else {}
        if behaviour.usage == "input":
            billed = {}
        events = [
            self._event("content_block_stop", index=0),
            self._event("message_delta", delta=delta, **billed),
        ]
        return events if gateway else [*events, self._event("message_stop")]

    def error_event(self, payload: Any) -> bytes:
        return _sse(payload, "error")

    def garbage(self) -> bytes:
        return b'event: content_block_delta\ndata: {"type": "content_block_delta", "del\n\n'

    def finish(self, finish: Optional[str], refused: bool) -> str:
        if finish is not None:
            return finish
        return "refusal" if refused else "end_turn"


# ---------------------------------------------------------------- the server


def is_fold(request: RecordedRequest) -> bool:
    """Whether ``request`` is a memory fold (OpenAI or Anthropic wire), not a reply's."""
    body = request.json
    wire: Any = _AnthropicWire() if "system" in body else _OpenAIWire()
    return _fold_reply(wire, body) is not None


def replies(requests: list[RecordedRequest]) -> list[RecordedRequest]:
    """``requests`` without the memory folds (which run beside the replies)."""
    return [r for r in requests if not is_fold(r)]


def _fold_reply(wire: Any, body: Any) -> Optional[Behaviour]:
    """The answer to a memory fold request (see the module docstring); None for any other
    request. Folds run beside the turns, so they never take a test's scripted replies."""
    texts = wire.texts(body)
    system = [text for role, text in texts if role in ("system", "developer")]
    users = [text for role, text in texts if role == "user"]
    if system[:1] != [FOLD_INSTRUCTION] or not users:
        return None
    return reply(summarise(users[-1]))


class FakeLLMServer:
    """A scriptable fake of both providers' HTTP APIs (see the module docstring)."""

    def __init__(self, default_reply: Optional[str] = None, strict: bool = True) -> None:
        self.default_reply = default_reply
        #: Refuse what the real APIs refuse (``fake_llm_checks``) before any behaviour.
        self.strict = strict
        #: Models that refuse parameters like OpenAI's reasoning models, besides the
        #: o-series and gpt-5 names (a deployment or gateway alias, say).
        self.reasoning_models: set[str] = set()
        #: Refuse ``response_format`` (OpenAI wire) as a compatible server without JSON
        #: mode does: a 400 that names no parameter and no refusal.
        self.rejects_json_mode = False
        self._queue: deque[Behaviour] = deque()
        self._requests: list[RecordedRequest] = []
        # The thread runner enqueues from another thread while the loop pops.
        self._lock = threading.Lock()
        self._recorded = threading.Condition(self._lock)  # a request came or changed
        self._closing = asyncio.Event()
        self._gates: dict[str, asyncio.Event] = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._runner: Optional[web.AppRunner] = None
        self.base_url = ""

    # -- scripting

    def enqueue(self, *behaviours: Behaviour | dict[str, Any]) -> None:
        """Append behaviours; each request consumes the first one meant for its provider."""
        with self._lock:
            self._queue.extend(
                b if isinstance(b, Behaviour) else Behaviour(**b) for b in behaviours
            )

    def reset(self) -> None:
        """Forget queued behaviours and recorded requests; open every gate."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            gates, self._gates = list(self._gates.values()), {}
        for gate in gates:
            self._call_in_loop(gate.set)

    def release(self, gate: str) -> None:
        """Let the requests waiting at ``gate`` answer (and later ones pass at once)."""
        self._call_in_loop(self._gate(gate).set)

    def _gate(self, name: str) -> asyncio.Event:
        with self._lock:
            return self._gates.setdefault(name, asyncio.Event())

    def _call_in_loop(self, callback: Any) -> None:
        """Run ``callback`` on the server's loop (safe from any thread)."""
        if self._loop is None or self._loop.is_closed():
            callback()
        else:
            self._loop.call_soon_threadsafe(callback)

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far (control requests excluded)."""
        with self._lock:
            return list(self._requests)

    def wait_until(
        self, condition: Callable[[list[RecordedRequest]], object], timeout: float = 10
    ) -> list[RecordedRequest]:
        """Block until ``condition(requests)`` holds, re-checked whenever a request comes
        or its record changes (e.g. its ``outcome``); from a test's loop, run it in a thread
        (``asyncio.to_thread``). Raises ``TimeoutError``."""
        with self._recorded:
            if not self._recorded.wait_for(lambda: condition(self._requests), timeout):
                raise TimeoutError(f"fake LLM: condition not met in {timeout} s")
            return list(self._requests)

    @property
    def openai_base_url(self) -> str:
        """``base_url`` for ``openai.AsyncOpenAI``."""
        return self.base_url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        """``base_url`` for ``anthropic.AsyncAnthropic``."""
        return self.base_url

    def _next(self, provider: str) -> Optional[Behaviour]:
        with self._lock:
            for behaviour in self._queue:
                if behaviour.provider in (None, provider):
                    self._queue.remove(behaviour)
                    return behaviour
        return None

    # -- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0 picks a free port); return the base URL."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/v1/messages", self._anthropic)
        app.router.add_post("/_control/enqueue", self._control_enqueue)
        app.router.add_get("/_control/requests", self._control_requests)
        app.router.add_post("/_control/reset", self._control_reset)
        app.router.add_post("/_control/release", self._control_release)
        self._closing = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.base_url = f"http://{host}:{self._runner.addresses[0][1]}"
        return self.base_url

    async def stop(self) -> None:
        """End hanging responses and close the server."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _stall(self, request: web.Request, seconds: float) -> None:
        """Send nothing for ``seconds``; ``ConnectionResetError`` as soon as the client has
        gone (a stream it closed), like the write that would have noticed."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._closing.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                raise ConnectionResetError("the client closed the stream")
            await self._sleep(min(0.05, deadline - time.monotonic()))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    # -- control endpoints

    async def _control_enqueue(self, request: web.Request) -> web.Response:
        payload = await request.json()
        self.enqueue(*(payload if isinstance(payload, list) else [payload]))
        return web.json_response({"queued": len(self._queue)})

    async def _control_requests(self, request: web.Request) -> web.Response:
        return web.json_response([asdict(r) for r in self.requests])

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    async def _control_release(self, request: web.Request) -> web.Response:
        self.release(str((await request.json())["gate"]))
        return web.json_response({"ok": True})

    # -- provider endpoints

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, _OpenAIWire())

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, _AnthropicWire())

    async def _serve(self, request: web.Request, wire: Any) -> web.StreamResponse:
        body = await request.json()
        headers = {k.lower(): v for k, v in request.headers.items()}
        peer = request.transport.get_extra_info("peername") if request.transport else None
        recorded = RecordedRequest(request.path, headers, body, connection=peer)
        with self._recorded:
            self._requests.append(recorded)
            self._recorded.notify_all()
        refused = wire.refusal(self, headers, body) if self.strict else None
        if refused is not None:
            return self._refuse(wire, refused)
        behaviour = (
            _fold_reply(wire, body)
            or self._next(wire.name)
            or reply(self._default_text(wire, body))
        )
        if behaviour.gate is not None:
            await self._wait_gate(behaviour.gate)
        response = await self._answer(request, wire, body, behaviour, recorded)
        with self._recorded:
            if recorded.outcome == "answering":
                recorded.outcome = "complete"
            self._recorded.notify_all()
        return response

    async def _wait_gate(self, name: str) -> None:
        gate = self._gate(name)
        closing = asyncio.ensure_future(self._closing.wait())
        opened = asyncio.ensure_future(gate.wait())
        try:
            await asyncio.wait({closing, opened}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            opened.cancel()

    async def _answer(
        self,
        request: web.Request,
        wire: Any,
        body: Any,
        behaviour: Behaviour,
        recorded: RecordedRequest,
    ) -> web.StreamResponse:
        kind, stream = behaviour.kind, bool(body.get("stream"))
        if kind == "error" and not (stream and behaviour.in_stream):
            return self._error(wire, behaviour)
        if kind == "context_too_long":
            message, err_type, code = wire.context
            return self._error(wire, error(400, message, error_type=err_type, code=code))
        if kind == "hang" and not (stream and behaviour.after_text):
            await self._sleep(behaviour.seconds)
            return web.json_response({})
        # Deterministic billing: a quarter of the characters in, a quarter out.
        prompt_chars = sum(len(text) for _, text in wire.texts(body))
        prompt = max(1, prompt_chars // 4)
        usage: Optional[Billing] = Billing(
            prompt,
            max(1, len(behaviour.text) // 4),
            min(behaviour.cached, prompt),
            min(behaviour.cache_write, prompt - min(behaviour.cached, prompt)),
        )
        if not behaviour.usage:
            usage = None
        if stream:
            return await self._stream(request, wire, body, behaviour, usage, recorded)
        if kind == "malformed":
            return web.Response(body=b'{"id": "broken", "cho', content_type="application/json")
        refused = kind == "refusal"
        await self._sleep(behaviour.delay)
        finish = wire.finish(behaviour.finish, refused)
        return web.json_response(wire.message(behaviour, refused, finish, usage))

    def _default_text(self, wire: Any, body: Any) -> str:
        if self.default_reply is not None:
            return self.default_reply
        users = [text for role, text in wire.texts(body) if role == "user"]
        return f"echo: {users[-1] if users else ''}"

    def _error(self, wire: Any, behaviour: Behaviour) -> web.Response:
        payload = self._error_payload(wire, behaviour)
        headers = {}
        if behaviour.retry_after is not None:
            headers["retry-after"] = str(behaviour.retry_after)
        return web.json_response(payload, status=behaviour.status, headers=headers)

    def _refuse(self, wire: Any, refusal: Refusal) -> web.Response:
        payload = wire.error_body(refusal.message, refusal.error_type, refusal.code, refusal.param)
        return web.json_response(payload, status=refusal.status)

    def _error_payload(self, wire: Any, behaviour: Behaviour) -> Any:
        status = behaviour.status
        message, err_type, code = wire.errors.get(
            status, wire.errors[500 if status >= 500 else 400]
        )
        return wire.error_body(
            behaviour.message or message,
            behaviour.error_type or err_type,
            behaviour.code or code,
            behaviour.param,
        )

    async def _stream(
        self,
        request: web.Request,
        wire: Any,
        body: Any,
        behaviour: Behaviour,
        usage: Optional[Billing],
        recorded: RecordedRequest,
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        # The client may have given up already (a timeout test, a stopped reply): recorded.
        try:
            for event in wire.head(usage):
                await response.write(event)
            if behaviour.kind in ("reply", "refusal"):
                await self._stream_reply(response, wire, body, behaviour, usage)
            else:
                await self._stream_failure(request, response, wire, behaviour)
            await self._sleep(behaviour.linger)
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            with self._recorded:
                recorded.outcome = "disconnected"
                self._recorded.notify_all()
        return response

    async def _stream_reply(
        self,
        response: web.StreamResponse,
        wire: Any,
        body: Any,
        behaviour: Behaviour,
        usage: Optional[Billing],
    ) -> None:
        refused = behaviour.kind == "refusal"
        if behaviour.reasoning is not None:
            for event in wire.reasoning(behaviour):
                await response.write(event)
        # Word by word by default: "a b" -> ["a ", "b"], nothing lost.
        words = [w for w in re.split(r"(?<=\s)(?=\S)", behaviour.text) if w]
        deltas = behaviour.deltas if behaviour.deltas is not None else words
        for delta in deltas:
            await self._sleep(behaviour.delay)
            await response.write(wire.delta(delta, refused))
        finish = wire.finish(behaviour.finish, refused)
        for event in wire.tail(body, behaviour, finish, usage):
            await response.write(event)

    async def _stream_failure(
        self, request: web.Request, response: web.StreamResponse, wire: Any, behaviour: Behaviour
    ) -> None:
        """One good delta, then a stall, an error event, garbage, or a dropped connection."""
        await response.write(wire.delta(behaviour.after_text or "partial ", False))
        if behaviour.kind == "hang":
            await self._stall(request, behaviour.seconds)
        elif behaviour.kind == "error":
            await response.write(wire.error_event(self._error_payload(wire, behaviour)))
        elif not behaviour.truncated:
            await response.write(wire.garbage())
        elif request.transport is not None:
            # The chunked body never gets its last chunk: the client sees a cut connection.
            request.transport.abort()
            raise ConnectionResetError("the fake dropped the connection on purpose")


# ---------------------------------------------------------------- runners


class ThreadedFakeLLM:
    """A :class:`FakeLLMServer` running in its own thread and event loop."""

    def __init__(
        self, server: FakeLLMServer, loop: asyncio.AbstractEventLoop, thread: threading.Thread
    ) -> None:
        self.server = server
        self._loop = loop
        self._thread = thread

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self.server.base_url

    def enqueue(self, *behaviours: Behaviour | dict[str, Any]) -> None:
        """Queue behaviours (thread-safe)."""
        self.server.enqueue(*behaviours)

    def release(self, gate: str) -> None:
        """Open ``gate`` (see :class:`Behaviour`); thread-safe."""
        self.server.release(gate)

    async def wait_for_requests(self, count: int, *, timeout: float = 10) -> list[RecordedRequest]:
        """Wait until at least ``count`` requests have arrived; all of them so far."""
        return await wait_until(
            lambda: (found := self.server.requests) and len(found) >= count and found,
            timeout=timeout,
            what=f"{count} request(s) at the fake LLM",
        )

    def stop(self) -> None:
        """Stop the server and join its thread."""
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> ThreadedFakeLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def wait_until(condition: Any, *, timeout: float = 10, what: str = "") -> Any:
    """Poll ``condition()`` every 20 ms until it is truthy; its value. ``AssertionError``
    after ``timeout`` seconds (a wait on a fake's records, not a guess at how long)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what or condition}")
        await asyncio.sleep(0.02)


def start_in_thread(
    host: str = "127.0.0.1",
    port: int = 0,
    default_reply: Optional[str] = None,
    server: Optional[FakeLLMServer] = None,
) -> ThreadedFakeLLM:
    """Start a fake server (``server``, or a new one) in a daemon thread; ``.base_url``
    is ready on return."""
    server = server or FakeLLMServer(default_reply)
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start(host, port))
        started.set()
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run, name="fake-llm", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the fake LLM server did not start")
    return ThreadedFakeLLM(server, loop, thread)


async def _serve_forever(host: str, port: int, default_reply: Optional[str]) -> None:
    server = FakeLLMServer(default_reply)
    url = await server.start(host, port)
    print(f"FAKE_LLM_URL={url}", flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    await server.stop()


def main(argv: Optional[list[str]] = None) -> None:
    """``python tests/fake_llm.py --port N --reply TEXT``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--reply", default=None, help="fixed reply (default: echo the user)")
    args = parser.parse_args(argv)
    asyncio.run(_serve_forever(args.host, args.port, args.reply))


if __name__ == "__main__":
    main()
