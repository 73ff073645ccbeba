"""What people see in the channel when a mate cannot answer: one short, clear line."""

from __future__ import annotations

from redbot.core.i18n import Translator

from loopflow.errors import (
    AuthenticationError,
    ContextTooLongError,
    EmptyReplyError,
    MissingKeyError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    RefusedError,
    RequestError,
    UnavailableError,
    scrub,
)
from loopflow.models import title

_ = Translator("Loopflow", __file__)

WARNING = "\N{WARNING SIGN}\N{VARIATION SELECTOR-16} "
#: A provider's reason, in a few words: the channel gets a hint, the log has the rest.
REASON_CHARS = 120


def failure_line(error: ProviderError, mate: str, prefix: str) -> str:
    """The line a channel sees when ``mate`` failed with ``error``; never a traceback,
    a key or a URL."""
    provider = error.provider or "openai"
    fields = {"mate": mate, "provider": title(provider), "p": prefix, "service": provider}
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
    elif isinstance(error, EmptyReplyError):
        text = _("{mate} had nothing to say.")
    elif isinstance(error, RequestError) and error.reason:
        fields["reason"] = _few_words(error.reason)
        text = _("{mate} can't answer: {provider} refused the request: {reason}")
    else:
        text = _("{mate} can't answer: {provider} returned an error.")
    return WARNING + text.format(**fields)


def bad_model_line(mate: str, provider: str, model: str, prefix: str) -> str:
    """The line a channel sees when the server's default model for ``provider`` is not a
    model name (stored by an older version), so ``mate``'s turn cannot start."""
    text = _(
        "{mate} can't answer: this server's default {provider} model `{model}` is not a "
        "model name. An admin can set another with `{p}mateset defaultmodel {service} <model>`."
    )
    shown = scrub(model, 40).replace("`", "'")
    return WARNING + text.format(
        mate=mate, provider=title(provider), model=shown, p=prefix, service=provider
    )


def _few_words(reason: str) -> str:
    """The start of the provider's reason, scrubbed again; backticks become quotes so
    they cannot open a code span in the line."""
    text = scrub(reason, REASON_CHARS).replace("`", "'")
    return text if text.endswith((".", "...", "!", "?")) else text + "."
