"""Provider adapters built from Red's shared API tokens or the SDKs' environment.

``[p]set api openai api_key,<key>`` (and ``base_url,<url>`` for compatible servers)
wins over ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``; the same for ``anthropic``.
Adapters are built once and rebuilt only when the owner changes the tokens.
"""

from __future__ import annotations

from collections.abc import Mapping

from redbot.core.bot import Red

from loopflow.providers import PROVIDER_NAMES, Provider, make_provider


def provider_from_tokens(name: str, tokens: Mapping[str, str]) -> Provider:
    """The adapter for ``name``, from Red's shared tokens where set, else the environment."""
    return make_provider(
        name,
        api_key=(tokens.get("api_key") or "").strip() or None,
        base_url=(tokens.get("base_url") or "").strip() or None,
    )


async def build_providers(bot: Red) -> dict[str, Provider]:
    """One adapter per provider (an adapter without any key reports it when used)."""
    return {
        name: provider_from_tokens(name, await bot.get_shared_api_tokens(name))
        for name in PROVIDER_NAMES
    }
