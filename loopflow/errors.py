"""loopflow's error tree.

Every failure the library reports is a :class:`LoopflowError`; callers catch the
branch they can act on and show ``str(error)`` (a short, user-safe line) for the rest::

    LoopflowError
    ├── MateError                 a mate's fields are invalid
    │   └── MateFileError         a loopflow mate file cannot be read
    ├── SettingError              a setting's value is invalid (a price, a limit)
    ├── UnknownMateError          no mate by that name
    ├── NothingToAnswerError      the conversation ends with the mate's own turn
    └── ProviderError             the LLM provider failed; ``retryable`` tells the caller
        ├── MissingKeyError       no API key configured for the provider
        ├── AuthenticationError   the key was rejected
        ├── RateLimitError        still rate limited after the SDK's retries
        ├── UnavailableError      5xx, connection refused, malformed response or stream
        ├── ProviderTimeoutError  no answer within the timeout
        ├── ContextTooLongError   the request exceeded the model's context window
        ├── RefusedError          the provider refused the content
        ├── RequestError          the provider refused the request itself (a 4xx)
        │   └── UnsupportedParameterError   ... because the model takes no such parameter
        └── EmptyReplyError       the model answered nothing, twice

Messages never contain API keys or URLs: adapters build them from status codes and
the provider's error text (passed through :func:`scrub`), never from request headers.
"""

from __future__ import annotations

import re

# What a provider's error text may echo back that nobody in a channel should read: API
# keys (OpenAI "sk-...", Anthropic "sk-ant-...", bearer tokens, and any long opaque
# token such as a 32-hex Azure key) and URLs (a gateway's internal address).
_END = r"(?=[.,;:!?)\]}>'\"`]*(?:\s|$))"  # a token ends before trailing punctuation
_SECRETS = (
    (re.compile(r"(?i)\b(?:(?:https?|wss?)://|www\.)\S+?" + _END), "[url]"),
    (re.compile(r"(?i)\bbearer\s+\S+?" + _END), "Bearer [key]"),
    (re.compile(r"\b(?:sk|pk|rk|key)-\S{4,}?" + _END), "[key]"),
    (re.compile(r"\b(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]{32,}\b"), "[key]"),
)


def scrub(text: str, limit: int = 300) -> str:
    """``text`` without anything that looks like an API key or a URL, at most ``limit``
    characters (cut with "...")."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class LoopflowError(Exception):
    """Base class of every error loopflow raises on purpose."""


class MateError(LoopflowError, ValueError):
    """A mate's fields are invalid (bad name, empty prompt, unknown provider, ...)."""


class SettingError(LoopflowError, ValueError):
    """A setting's value is invalid (a price, a daily token limit)."""


class MateFileError(MateError):
    """A loopflow mate file is malformed; ``source`` names the file when known."""

    def __init__(self, message: str, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class UnknownMateError(LoopflowError, LookupError):
    """No mate by that name."""


class NothingToAnswerError(LoopflowError):
    """Nothing new for the mate to answer: after the mate's own last turn there is no turn
    with anything to read (a sticker-only message described as nothing, say). A request
    would end with the mate's own reply and make it repeat itself, so none is sent."""


class ProviderError(LoopflowError):
    """The provider failed to answer.

    ``provider`` is ``"openai"`` or ``"anthropic"``; ``retryable`` says whether trying
    the same request later may work (rate limits, outages, timeouts).
    """

    retryable = False

    def __init__(self, message: str, provider: str = "") -> None:
        self.provider = provider
        super().__init__(message)


class MissingKeyError(ProviderError):
    """No API key is configured for the provider."""


class AuthenticationError(ProviderError):
    """The provider rejected the API key (401/403)."""


class RateLimitError(ProviderError):
    """The provider kept answering 429 after the SDK's retries."""

    retryable = True


class UnavailableError(ProviderError):
    """The provider is down, unreachable, or sent a response that cannot be read."""

    retryable = True


class ProviderTimeoutError(ProviderError):
    """The provider did not answer within the timeout."""

    retryable = True


class ContextTooLongError(ProviderError):
    """The request is longer than the model's context window."""


class RefusedError(ProviderError):
    """The provider refused to answer (content policy, safety filter)."""


class RequestError(ProviderError):
    """The provider refused the request itself (a 4xx the branches above do not cover).

    ``reason`` is the provider's own words, scrubbed of keys and URLs (:func:`scrub`).
    """

    def __init__(self, message: str, provider: str = "", reason: str = "") -> None:
        self.reason = reason
        super().__init__(message, provider)


class UnsupportedParameterError(RequestError):
    """The model takes no ``parameter`` (or not this value of it): OpenAI's
    ``unsupported_parameter``/``unsupported_value``, Anthropic's and gateways' wordings.

    ``replacement`` names the parameter to send the value as instead, if any
    (``max_tokens`` -> ``max_completion_tokens``). Adapters retry without it once.
    """

    def __init__(
        self,
        message: str,
        provider: str = "",
        reason: str = "",
        parameter: str = "",
        replacement: str = "",
    ) -> None:
        self.parameter = parameter
        self.replacement = replacement
        super().__init__(message, provider, reason)


class EmptyReplyError(ProviderError):
    """The model answered nothing (no text, only whitespace or only reasoning), even
    when asked a second time."""
