"""What the two SDK adapters share: the HTTP pool's limits and the error mapping.

The ``openai`` and ``anthropic`` SDKs are generated from one template and raise the
same families of exceptions (``APITimeoutError``, ``APIConnectionError``,
``APIError``), so one mapping serves both; each adapter only says how its provider's
HTTP errors read (``status_error``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import httpx

from loopflow.errors import ProviderError, ProviderTimeoutError, UnavailableError

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
