"""What the two SDK adapters share: the client's lifecycle, the HTTP pool's limits and
the error mapping.

The ``openai`` and ``anthropic`` SDKs are generated from one template and raise the
same families of exceptions (``APITimeoutError``, ``APIConnectionError``,
``APIError``), so one mapping serves both; each adapter only says how its provider's
HTTP errors read (``status_error``).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, Generic, Optional, TypeVar

import httpx

from loopflow.errors import ProviderError, ProviderTimeoutError, UnavailableError
from loopflow.providers.base import Provider

Client = TypeVar("Client")

# httpcore's pool slows down badly with many idle keep-alive connections (a burst of
# concurrent conversations leaves ~100 behind): keep a few, allow many at once.
POOL_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=20)


@contextlib.contextmanager
def mapped_errors(
    sdk: ModuleType, title: str, name: str, status_error: Callable[[Any], ProviderError]
) -> Iterator[None]:
    """Turn SDK, transport and parsing failures into loopflow errors.

    Wraps both the request and the iteration of a stream: the SDKs do not wrap
    transport errors that happen midway through a stream, hence the httpx clauses.
    """
    try:
        yield
    except ProviderError:
        raise
    except (sdk.APITimeoutError, httpx.TimeoutException) as exc:
        raise ProviderTimeoutError(f"{title} did not answer in time.", name) from exc
    except (sdk.APIConnectionError, httpx.HTTPError) as exc:
        raise UnavailableError(f"{title} could not be reached.", name) from exc
    except sdk.APIError as exc:
        raise status_error(exc) from exc
    except (ValueError, KeyError, AttributeError, TypeError, IndexError) as exc:
        # JSON that does not parse, or events without the fields every event has.
        raise UnavailableError(f"{title} sent a response loopflow could not read.", name) from exc


class SDKProvider(Provider, Generic[Client]):
    """An adapter over one official SDK's async client.

    ``api_key`` and ``base_url`` default to the SDK's own environment variables. The
    client is built once, on the first request (so a missing key is reported by
    ``execute`` as :class:`~loopflow.errors.MissingKeyError`, not at construction), or
    injected as ``client``. Retries with backoff are the SDK's (``max_retries``).
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        client: Optional[Client] = None,
    ) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._timeout = timeout
        self._max_retries = max_retries
        self._client = client
        self._owns_client = client is None

    @abc.abstractmethod
    def _build_client(self) -> Client:
        """A new SDK client; raises ``MissingKeyError`` when no key is configured."""

    def _get_client(self) -> Client:
        if self._client is None:
            self._client = self._build_client()
        return self._client

    async def aclose(self) -> None:
        """Close the SDK client if this provider built it."""
        if self._client is not None and self._owns_client:
            await self._client.close()  # type: ignore[attr-defined]
            self._client = None
