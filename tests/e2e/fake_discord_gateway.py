"""The fake Discord gateway: HELLO, IDENTIFY -> READY + GUILD_CREATE, heartbeats, RESUME.

Frames go out as TEXT JSON (discord.py only decompresses binary frames, so the
``compress=zlib-stream`` it asks for is ignored). Each connection has one writer task fed by a
queue, so dispatch is synchronous and frames keep their order.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from aiohttp import WSMsgType, web

log = logging.getLogger("fake_discord.gateway")

DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, VOICE_STATE, RESUME, RECONNECT = 0, 1, 2, 3, 4, 6, 7
REQUEST_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 8, 9, 10, 11

HEARTBEAT_INTERVAL_MS = 41250
HEARTBEAT_ACK_DELAY = 0.05
RESUME_LOG_SIZE = 5000


class Connection:
    """One websocket: a queue of frames and the task that writes them."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self._queue: asyncio.Queue[Optional[dict[str, Any]]] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write())

    def send(self, frame: dict[str, Any]) -> None:
        """Queue a frame (never blocks)."""
        self._queue.put_nowait(frame)

    async def _write(self) -> None:
        while (frame := await self._queue.get()) is not None:
            if self.ws.closed:
                return
            try:
                await self.ws.send_str(json.dumps(frame))
            except ConnectionError:
                return

    def stop(self) -> None:
        """Let the writer finish what is queued, then end (the socket is already closing)."""
        self._queue.put_nowait(None)

    async def close(self, code: int) -> None:
        """Flush queued frames, then close with ``code``."""
        self._queue.put_nowait(None)
        await asyncio.wait([self._writer], timeout=2)
        await self.ws.close(code=code)


@dataclass
class Session:
    """A gateway session: its sequence numbers and the frames a RESUME may replay."""

    id: str
    shard: list[int]
    seq: int = 0
    frames: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=RESUME_LOG_SIZE)
    )
    connection: Optional[Connection] = None


@dataclass
class GatewayStats:
    """What happened on the gateway, for tests (counts and the last presence sent)."""

    connections: int = 0
    identifies: int = 0
    resumes: int = 0
    invalid_sessions: int = 0
    dropped_events: int = 0
    presence: Optional[dict[str, Any]] = None
    received_ops: list[int] = field(default_factory=list)


class Gateway:
    """The gateway of the fake Discord for one bot token.

    ``ready(session_id, shard)`` builds READY's payload, ``guild_create()`` GUILD_CREATE's,
    ``members_chunk(request)`` a GUILD_MEMBERS_CHUNK; ``on_change()`` is called after every
    frame sent so waiters can re-check their conditions.
    """

    def __init__(
        self,
        token: str,
        ready: Callable[[str, list[int]], dict[str, Any]],
        guild_create: Callable[[], dict[str, Any]],
        members_chunk: Callable[[dict[str, Any]], dict[str, Any]],
        on_change: Callable[[], None],
    ) -> None:
        self._token = token
        self._ready = ready
        self._guild_create = guild_create
        self._members_chunk = members_chunk
        self._on_change = on_change
        self.session: Optional[Session] = None
        self.stats = GatewayStats()

    @property
    def connected(self) -> bool:
        """Whether a client holds an identified or resumed connection right now."""
        return self.session is not None and self.session.connection is not None

    def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH frame to the session (kept for RESUME while disconnected)."""
        session = self.session
        if session is None:
            self.stats.dropped_events += 1
            return
        session.seq += 1
        frame = {"op": DISPATCH, "t": event, "s": session.seq, "d": data}
        session.frames.append(frame)
        if session.connection is not None:
            session.connection.send(frame)
        self._on_change()

    async def force_reconnect(self, mode: str = "reconnect") -> None:
        """Make the client reconnect.

        ``reconnect`` sends op 7 (the client resumes), ``drop`` closes the socket with code
        4000 (the client resumes), ``invalidate`` sends op 9 with ``d: false`` (the client
        identifies anew and gets a fresh READY).
        """
        session = self.session
        if session is None or session.connection is None:
            raise RuntimeError("no gateway connection to reconnect")
        conn = session.connection
        if mode == "reconnect":
            conn.send({"op": RECONNECT, "d": None})
        elif mode == "drop":
            session.connection = None
            await conn.close(4000)
        elif mode == "invalidate":
            self.session = None
            self.stats.invalid_sessions += 1
            conn.send({"op": INVALID_SESSION, "d": False})
        else:
            raise ValueError(f"unknown reconnect mode {mode!r}")

    async def close_all(self) -> None:
        """Close the current connection (server shutdown)."""
        if self.session is not None and self.session.connection is not None:
            await self.session.connection.close(1001)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """The ``/gateway`` websocket endpoint."""
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        conn = Connection(ws)
        self.stats.connections += 1
        conn.send({"op": HELLO, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                await self._receive(conn, json.loads(msg.data))
        finally:
            if self.session is not None and self.session.connection is conn:
                self.session.connection = None
            conn.stop()
            self._on_change()
        return ws

    async def _receive(self, conn: Connection, frame: dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d")
        self.stats.received_ops.append(op)
        if op == HEARTBEAT:
            asyncio.get_running_loop().call_later(
                HEARTBEAT_ACK_DELAY, conn.send, {"op": HEARTBEAT_ACK, "d": None}
            )
        elif op == IDENTIFY:
            await self._identify(conn, data)
        elif op == RESUME:
            await self._resume(conn, data)
        elif op == REQUEST_MEMBERS:
            self.dispatch("GUILD_MEMBERS_CHUNK", self._members_chunk(data))
        elif op == PRESENCE:
            self.stats.presence = data
        elif op == VOICE_STATE:
            pass
        else:
            log.warning("gateway: unhandled op %s: %s", op, frame)

    async def _identify(self, conn: Connection, data: dict[str, Any]) -> None:
        if data.get("token") != self._token:
            await conn.close(4004)  # Authentication failed
            return
        old = self.session
        if old is not None and old.connection is not None and old.connection is not conn:
            await old.connection.close(4000)
        self.stats.identifies += 1
        shard = data.get("shard") or [0, 1]
        self.session = Session(secrets.token_hex(16), shard, connection=conn)
        self.dispatch("READY", self._ready(self.session.id, shard))
        self.dispatch("GUILD_CREATE", self._guild_create())

    async def _resume(self, conn: Connection, data: dict[str, Any]) -> None:
        session = self.session
        if (
            session is None
            or data.get("session_id") != session.id
            or data.get("token") != self._token
        ):
            self.stats.invalid_sessions += 1
            conn.send({"op": INVALID_SESSION, "d": False})
            return
        if session.connection is not None and session.connection is not conn:
            await session.connection.close(4000)
        self.stats.resumes += 1
        session.connection = conn
        seen = data.get("seq") or 0
        for frame in list(session.frames):
            if frame["s"] > seen:
                conn.send(frame)
        self.dispatch("RESUMED", {})
