"""The machinery of the fake Discord: its thread and loop, HTTP server, middleware and waits.

``DiscordServer`` owns the aiohttp application (REST routes, gateway, ``/_control``), runs it
on its own event loop in a daemon thread, and offers the primitives the public test API in
``fake_discord.py`` is built on: ``run_sync`` (call on the server thread), ``_bridge`` (await
a server-side coroutine from any loop) and ``_wait`` (re-check a condition after every
change). The middleware keeps the REST call log, applies latency and injected faults, checks
the bot token and answers unknown routes with Discord's 404 (and remembers them).
"""

from __future__ import annotations

import asyncio
import copy
import fnmatch
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Coroutine
from typing import Any, Callable, Optional, TypeVar

from aiohttp import web
from fake_discord_control import add_control_routes
from fake_discord_faults import Call, Fault, add_rate_limit_headers
from fake_discord_gateway import Gateway
from fake_discord_interactions import InteractionState
from fake_discord_model import DiscordError, Message
from fake_discord_rest import API_PREFIX, json_response
from fake_discord_state import DiscordState
from fake_discord_webhooks import ApiRoutes

log = logging.getLogger("fake_discord")
T = TypeVar("T")
S = TypeVar("S", bound="DiscordServer")
BOT_TOKEN = "RkFLRS5CT1QuVE9LRU4.e2e-harness." + "x" * 38  # real tokens are ~70 characters


class HarnessTimeout(AssertionError):
    """A wait in the harness ran out of time (a failed expectation, shown as a test failure)."""


class DiscordServer:
    """The fake Discord's server: listens on loopback only, in its own thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError("the fake Discord only listens on IPv4 loopback")
        self.host, self.port = host, port
        self.token = BOT_TOKEN
        self.calls_log: list[Call] = []
        self.unknown_routes: list[str] = []
        self._faults: list[Fault] = []
        self.latency = 0.0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._runner: Optional[web.AppRunner] = None
        self._changed: Optional[asyncio.Event] = None
        self._last_sent_id = 0
        self.state: DiscordState
        self.gateway: Gateway

    # ------------------------------------------------------------------------- lifecycle

    def start(self: S) -> S:
        """Start the server thread and wait until it listens."""
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._start_server())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._stop_server())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-discord", daemon=True)
        self._thread.start()
        if not started.wait(10) or failure:
            raise RuntimeError(f"fake Discord did not start: {failure}")
        return self

    def stop(self) -> None:
        """Close the gateway and the server, and end the thread."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    @property
    def running(self) -> bool:
        """Whether the server thread is up."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _start_server(self) -> None:
        # Bind first: the routes and the world need the URL, and aiohttp freezes the
        # router when the runner is set up.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._changed = asyncio.Event()
        self.state = DiscordState(self.url, self._dispatch)
        self.state.interactions = InteractionState(self.state)
        self.gateway = Gateway(
            self.token,
            self._ready_payload,
            lambda: self.state.guild_payload(full=True),
            self._members_chunk,
            self._notify,
        )
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024**2)
        app.router.add_get("/gateway", self.gateway.handle)
        add_control_routes(app, self)
        ApiRoutes(self.state, base_url=self.url).register(app)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def _stop_server(self) -> None:
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: what ``red_launcher.py --fake-url`` takes."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The REST base (``Route.BASE`` for discord.py)."""
        return self.url + API_PREFIX

    # ------------------------------------------------------------------ thread bridging

    def _on_loop(self) -> bool:
        return threading.get_ident() == getattr(self._thread, "ident", None)

    def run_sync(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``func`` on the server thread and return its result (blocks briefly)."""
        if self._on_loop():
            return func(*args, **kwargs)
        assert self._loop is not None, "FakeDiscord is not started"

        async def call() -> T:
            return func(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(30)

    def _bridge(self, coro: Coroutine[Any, Any, T]) -> Awaitable[T]:
        """Run ``coro`` on the server loop; await the result from any other loop."""
        assert self._loop is not None, "FakeDiscord is not started"
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def _wait(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (result := check()):
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = "\n".join(f"  {m}" for m in self._recent_messages(8))
                raise HarnessTimeout(
                    f"timed out after {timeout:g}s waiting for {what}; recent messages:\n{recent}"
                    "\n(see the 'Red log' section of the report for the bot's side)"
                )
            assert self._changed is not None
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), min(remaining, 0.5))
            except asyncio.TimeoutError:
                pass
        return result

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    def _recent_messages(self, n: int) -> list[Message]:
        return sorted(self.state.messages.values(), key=lambda m: m.id)[-n:]

    # -------------------------------------------------------------------- call log, faults

    def calls(self, pattern: str = "*", *, since: float = 0.0) -> list[Call]:
        """REST calls made after ``since`` whose ``"METHOD /route/{template}"`` matches."""
        return self.run_sync(
            lambda: [
                copy.copy(c)
                for c in self.calls_log
                if c.time >= since and fnmatch.fnmatchcase(c.key, pattern)
            ]
        )

    def fail_next(
        self, pattern: str, kind: str = "rate_limit", *, count: int = 1, **options: Any
    ) -> Fault:
        """Answer the next ``count`` calls matching ``pattern`` with an error.

        ``kind``: ``rate_limit`` (429; ``retry_after=0.2``, ``is_global=False``),
        ``unknown_webhook`` (404/10015), ``missing_permissions`` (403/50013),
        ``unknown_message``, ``unknown_channel``, ``missing_access``, ``server_error``,
        ``bad_gateway``, or give ``status=``, ``code=``, ``message=``. The returned
        ``Fault.hits`` lists the calls it answered.
        """
        fault = Fault(pattern, kind, count, **options)
        self.run_sync(self._faults.append, fault)
        return fault

    def set_latency(self, seconds: float) -> None:
        """Delay every REST answer by ``seconds``."""
        self.latency = seconds

    # ------------------------------------------------------------------ server internals

    def _dispatch(self, event: str, data: dict[str, Any]) -> None:
        self.gateway.dispatch(event, data)
        self._notify()

    def _ready_payload(self, session_id: str, shard: list[int]) -> dict[str, Any]:
        return {
            "v": 10,
            "user": {**self.state.bot.payload(), "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(self.state.guild_id), "unavailable": True}],
            "session_id": session_id,
            "session_type": "normal",
            "resume_gateway_url": self.url.replace("http://", "ws://", 1) + "/gateway",
            "shard": shard,
            "application": {"id": str(self.state.bot.id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
        }

    def _members_chunk(self, request: dict[str, Any]) -> dict[str, Any]:
        wanted = {int(u) for u in request.get("user_ids") or []}
        query = (request.get("query") or "").lower()
        members = [
            m.payload()
            for m in self.state.members.values()
            if (not wanted or m.user.id in wanted) and m.user.username.lower().startswith(query)
        ]
        return {
            "guild_id": str(self.state.guild_id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
            "presences": [],
            "nonce": request.get("nonce"),
        }

    async def _not_found(self, request: web.Request) -> web.Response:
        raise web.HTTPNotFound()  # the middleware logs it and answers Discord-style

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[..., Any]
    ) -> web.StreamResponse:
        if request.path.startswith("/_control") or request.path == "/gateway":
            return await handler(request)
        resource = request.match_info.route.resource
        template = resource.canonical if resource is not None else request.path
        known = handler != self._not_found and template.startswith(API_PREFIX)
        route = template[len(API_PREFIX) :] if known else request.path
        call = Call(time.time(), request.method, route, request.path, dict(request.query))
        self.calls_log.append(call)
        if self.latency:
            await asyncio.sleep(self.latency)
        response = self._fault_response(call)  # (a Response is falsy: it is an empty mapping)
        if response is None:
            response = await self._answer(request, handler, call, known)
        add_rate_limit_headers(response, call.key)
        call.status = response.status
        self._notify()
        return response

    def _fault_response(self, call: Call) -> Optional[web.Response]:
        for fault in self._faults:
            if fault.matches(call):
                fault.hits.append(call)
                call.fault = fault.kind
                return fault.response()
        return None

    async def _answer(
        self, request: web.Request, handler: Callable[..., Any], call: Call, known: bool
    ) -> web.StreamResponse:
        if not known and call.route.startswith("/api/"):
            log.warning("fake Discord: unknown route %s %s", request.method, request.path_qs)
            self.unknown_routes.append(f"{request.method} {request.path_qs}")
            return json_response({"message": "404: Not Found", "code": 0}, status=404)
        needs_token = known and "webhook_token" not in request.match_info
        if needs_token and request.headers.get("Authorization") != f"Bot {self.token}":
            return json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        try:
            return await handler(request)
        except DiscordError as exc:
            return json_response(exc.payload(), status=exc.status)
        except web.HTTPNotFound:
            self.unknown_routes.append(f"{request.method} {request.path_qs}")
            log.warning("fake Discord: unknown path %s %s", request.method, request.path_qs)
            return json_response({"message": "404: Not Found", "code": 0}, status=404)
        except (KeyError, ValueError) as exc:
            log.exception("fake Discord: bad request %s %s", request.method, request.path_qs)
            return json_response(
                {"message": f"400: Bad Request ({exc!r})", "code": 50035}, status=400
            )
