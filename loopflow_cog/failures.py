"""What people see in the channel when a mate cannot answer: one short, clear line."""

from __future__ import annotations

from redbot.core.i18n import Translator

from loopflow.errors import (
    AuthenticationError,
    ContextTooLongError,
    MissingKeyError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    RefusedError,
    UnavailableError,
)

_ = Translator("Loopflow", __file__)

_PROVIDER_TITLES = {"openai": "OpenAI", "anthropic": "Anthropic"}


def failure_line(error: ProviderError, mate: str, prefix: str) -> str:
    """The line a channel sees when ``mate`` failed with ``error``; never a traceback."""
    provider = error.provider or "openai"
    fields = {"mate": mate, "provider": _PROVIDER_TITLES.get(provider, provider), "p": prefix}
    fields["service"] = provider
    if isinstance(error, MissingKeyError):
        text = _(
            "{mate} can't answer: no {provider} API key is set. The bot owner can set one "
            "with `{p}set api {service} api_key,<key>`."
        )
    elif isinstance(error, AuthenticationError):
        text = _(
            "{mate} can't answer: {provider} rejected the API key. The bot owner can set a "
            "new one with `{p}set api {service} api_key,<key>`."
        )
    elif isinstance(error, RateLimitError):
        text = _("{mate} is rate limited by {provider} right now. Try again in a minute.")
    elif isinstance(error, ProviderTimeoutError):
        text = _("{mate} took too long to answer: {provider} timed out. Try again.")
    elif isinstance(error, UnavailableError):
        text = _("{provider} is unavailable right now, so {mate} can't answer. Try again soon.")
    elif isinstance(error, ContextTooLongError):
        text = _(
            "This conversation is too long for {mate}'s model. `{p}mate reset` starts it over."
        )
    elif isinstance(error, RefusedError):
        text = _("{mate} can't answer that: {provider} refused the request.")
    else:
        text = _("{mate} can't answer: {provider} returned an error.")
    return "\N{WARNING SIGN}\N{VARIATION SELECTOR-16} " + text.format(**fields)
