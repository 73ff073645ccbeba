"""Fault injection and the REST call log of the fake Discord.

A ``Fault`` answers the next N calls whose ``"METHOD /route/{template}"`` matches a glob
pattern with an error Discord really sends: a 429 with its headers and ``retry_after``,
404 Unknown Webhook (10015), 403 Missing Permissions (50013), 400 blocked by AutoMod
(200000), ...
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from aiohttp import web

# kind -> (status, code, message)
FAULT_KINDS: dict[str, tuple[int, int, str]] = {
    "rate_limit": (429, 0, "You are being rate limited."),
    "unknown_webhook": (404, 10015, "Unknown Webhook"),
    "unknown_message": (404, 10008, "Unknown Message"),
    "unknown_channel": (404, 10003, "Unknown Channel"),
    "missing_permissions": (403, 50013, "Missing Permissions"),
    "missing_access": (403, 50001, "Missing Access"),
    "server_error": (500, 0, "500: Internal Server Error"),
    "bad_gateway": (502, 0, "502: Bad Gateway"),
    "automod": (400, 200000, "Message was blocked by AutoMod"),
    "max_webhooks": (400, 30007, "Maximum number of webhooks reached (15)"),
}


@dataclass
class Call:
    """One REST call the bot made: when, what route (template and concrete path), result."""

    time: float
    method: str
    route: str  # "/channels/{channel_id}/messages", or the raw path for unknown routes
    path: str
    query: dict[str, str]
    status: int = 0
    fault: Optional[str] = None

    @property
    def key(self) -> str:
        """``"METHOD /route"``, the string fault patterns match."""
        return f"{self.method} {self.route}"

    def __str__(self) -> str:
        return f"{self.key} -> {self.status}" + (f" (fault {self.fault})" if self.fault else "")


@dataclass
class Fault:
    """Answer the next ``count`` calls matching ``pattern`` with an error.

    ``pattern`` is a glob over ``"METHOD /route/template"``, e.g.
    ``"POST /channels/{channel_id}/messages"`` or ``"* /webhooks/*"``.
    """

    pattern: str
    kind: str = "rate_limit"
    count: int = 1
    retry_after: float = 0.2
    is_global: bool = False
    status: Optional[int] = None
    code: Optional[int] = None
    message: Optional[str] = None
    hits: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS and self.status is None:
            raise ValueError(f"unknown fault kind {self.kind!r}; give status/code/message")

    def matches(self, call: Call) -> bool:
        """Whether this fault still has calls to spoil and ``call`` is one of them."""
        return len(self.hits) < self.count and fnmatch.fnmatchcase(call.key, self.pattern)

    def response(self) -> web.Response:
        """The error response Discord would send."""
        status, code, message = FAULT_KINDS.get(self.kind, (0, 0, ""))
        status = self.status or status
        body: dict[str, Any] = {"message": self.message or message, "code": self.code or code}
        headers = {"Content-Type": "application/json"}
        if status == 429:
            body = {
                "message": body["message"],
                "retry_after": self.retry_after,
                "global": self.is_global,
            }
            headers.update(
                {
                    "Retry-After": str(math.ceil(self.retry_after)),
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{time.time() + self.retry_after:.3f}",
                    "X-RateLimit-Reset-After": f"{self.retry_after:.3f}",
                    "X-RateLimit-Scope": "global" if self.is_global else "user",
                    "Via": "1.1 google",  # discord.py treats a 429 without Via as a Cloudflare ban
                }
            )
            if self.is_global:
                headers["X-RateLimit-Global"] = "true"
        return web.Response(status=status, body=json.dumps(body).encode(), headers=headers)


def add_rate_limit_headers(response: web.StreamResponse, route_key: str) -> None:
    """Generous rate-limit headers, as Discord sends on every answer (a bucket per route)."""
    if "X-RateLimit-Limit" in response.headers:
        return
    bucket = hashlib.md5(route_key.encode()).hexdigest()[:16]
    response.headers.update(
        {
            "X-RateLimit-Bucket": bucket,
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": "49",
            "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
            "X-RateLimit-Reset-After": "1.000",
            "Via": "1.1 google",
        }
    )
