"""Run an unmodified Red-DiscordBot against the fake Discord.

    python red_launcher.py --fake-url http://127.0.0.1:PORT <redbot arguments...>

Nothing of Red or discord.py changes on disk; before Red's ``main()`` runs, this process:

- points discord.py at the fake: ``Route.BASE`` (REST, webhooks included),
  ``DiscordWebSocket.DEFAULT_GATEWAY`` (discord.py falls back to it after an invalid session)
  and ``Asset.BASE`` (the CDN, for avatars and icons);
- replaces Red's PyPI version check (``fetch_latest_red_version_info``, run by ``on_ready``
  and ``[p]info``) with an offline answer;
- installs a network guard: an HTTP request (aiohttp or httpx) or a plain socket connection
  to anything but loopback (or a host in ``E2E_ALLOWED_HOSTS``) fails and prints a line
  starting with ``E2E-NETWORK-GUARD`` to stderr, which the harness reports.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from typing import Any
from urllib.parse import urlsplit

GUARD_MARK = "E2E-NETWORK-GUARD"


def is_allowed_host(host: Any) -> bool:
    """Loopback addresses, ``localhost`` and hosts listed in ``E2E_ALLOWED_HOSTS``."""
    if host is None:
        return True
    host = str(host).strip("[]").lower()
    extra = {
        h.strip().lower() for h in os.environ.get("E2E_ALLOWED_HOSTS", "").split(",") if h.strip()
    }
    if host in {"localhost", *extra}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _blocked(what: str, host: Any) -> str:
    message = f"{GUARD_MARK}: blocked {what} to {host!r} (only loopback is allowed in e2e tests)"
    print(message, file=sys.stderr, flush=True)
    return message


def install_network_guard() -> None:
    """Refuse outbound connections that are not to loopback (see the module docstring)."""
    import aiohttp

    original_request = aiohttp.ClientSession._request

    async def guarded_request(
        self: aiohttp.ClientSession, method: str, str_or_url: Any, **kwargs: Any
    ) -> Any:
        url = str_or_url if isinstance(str_or_url, str) else str(str_or_url)
        host = urlsplit(url).hostname
        if not is_allowed_host(host):
            raise aiohttp.ClientConnectionError(_blocked(f"HTTP {method}", host))
        return await original_request(self, method, str_or_url, **kwargs)

    aiohttp.ClientSession._request = guarded_request  # type: ignore[method-assign]

    try:
        import httpx
    except ImportError:
        pass
    else:
        for client_class in (httpx.AsyncClient, httpx.Client):
            _guard_httpx(client_class, httpx)

    # Covers the standard event loop and blocking code; uvloop connects in C (hence the
    # HTTP-level guards above, which are where Red, discord.py and the SDKs connect).
    original_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not is_allowed_host(address[0]):
            raise ConnectionRefusedError(_blocked("socket connection", address[0]))
        return original_connect(self, address)

    socket.socket.connect = guarded_connect  # type: ignore[method-assign]


def _guard_httpx(client_class: Any, httpx: Any) -> None:
    original_send = client_class.send
    if getattr(original_send, "_e2e_guarded", False):
        return

    def check(request: Any) -> None:
        if not is_allowed_host(request.url.host):
            raise httpx.ConnectError(
                _blocked(f"HTTP {request.method}", request.url.host), request=request
            )

    if client_class is httpx.AsyncClient:

        async def send(self: Any, request: Any, **kwargs: Any) -> Any:
            check(request)
            return await original_send(self, request, **kwargs)
    else:

        def send(self: Any, request: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            check(request)
            return original_send(self, request, **kwargs)

    send._e2e_guarded = True  # type: ignore[attr-defined]
    client_class.send = send


def point_discord_at(fake_url: str) -> None:
    """Make discord.py talk to the fake Discord at ``fake_url`` (``http://127.0.0.1:PORT``)."""
    import discord.asset
    import discord.gateway
    import discord.http
    import yarl

    fake_url = fake_url.rstrip("/")
    discord.http.Route.BASE = f"{fake_url}/api/v10"
    ws_url = "ws://" + fake_url.split("://", 1)[1] + "/gateway"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(ws_url)
    discord.asset.Asset.BASE = fake_url


def stub_red_phone_home() -> None:
    """Replace Red's PyPI version lookup with "you run the latest version"."""
    import redbot.core._events as events
    import redbot.core.core_commands as core_commands
    from redbot import version_info

    async def offline_version_info() -> tuple[Any, None]:
        return version_info, None

    events.fetch_latest_red_version_info = offline_version_info
    core_commands.fetch_latest_red_version_info = offline_version_info


def main(argv: list[str]) -> None:
    """Parse ``--fake-url``, patch, and hand the remaining arguments to Red's ``main()``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fake-url", required=True, help="http://127.0.0.1:PORT of the fake Discord"
    )
    args, red_args = parser.parse_known_args(argv)
    if not is_allowed_host(urlsplit(args.fake_url).hostname):
        parser.error("--fake-url must point at loopback")

    # Red's early init (uvloop policy, logging class) runs when redbot.__main__ is imported.
    import redbot.__main__ as red_main

    install_network_guard()
    point_discord_at(args.fake_url)
    stub_red_phone_home()
    sys.argv = ["redbot", *red_args]
    red_main.main()


if __name__ == "__main__":
    main(sys.argv[1:])
