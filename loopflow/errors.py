"""loopflow's error tree.

Every failure the library reports is a :class:`LoopflowError`; callers catch the
branch they can act on and show ``str(error)`` (a short, user-safe line) for the rest::

    LoopflowError
    ├── MateError                 a mate's fields are invalid
    │   └── MateFileError         a loopflow mate file cannot be read
    ├── UnknownMateError          no mate by that name
    ├── NothingToAnswerError      the conversation ends with the mate's own turn
    └── ProviderError             the LLM provider failed; ``retryable`` tells the caller
        ├── MissingKeyError       no API key configured for the provider
        ├── AuthenticationError   the key was rejected
        ├── RateLimitError        still rate limited after the SDK's retries
        ├── UnavailableError      5xx, connection refused, malformed response or stream
        ├── ProviderTimeoutError  no answer within the timeout
        ├── ContextTooLongError   the request exceeded the model's context window
        └── RefusedError          the provider refused the content

Messages never contain API keys: adapters build them from status codes and the
provider's error text, never from request headers.
"""

from __future__ import annotations


class LoopflowError(Exception):
    """Base class of every error loopflow raises on purpose."""


class MateError(LoopflowError, ValueError):
    """A mate's fields are invalid (bad name, empty prompt, unknown provider, ...)."""


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
