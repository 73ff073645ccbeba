"""A request body as the JSON the SDKs would send, its messages encoded once each.

A conversation's window goes out again on every turn with one message more, and the SDKs
encode the whole body each time (``json.dumps``, ~0.4 µs a short message and ~1 µs a
200-character one: 0.17-0.43 ms for a 400-message window, BENCHMARKS.md). A message's
JSON never changes, so :class:`BodyEncoder` remembers it by role and text and joins the
remembered pieces: what a request costs to encode is its new messages.

The bytes are what the SDKs' own encoder makes of the body (``openai._utils._json`` and
``anthropic``'s: UTF-8, ``ensure_ascii=False``, compact separators, ``allow_nan=False``),
with ``messages`` last; the SDKs send them as they are through ``post(content=...)``.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Mapping
from typing import Any

from loopflow.chat.bounded import Generations

# Memory of one remembered message besides its JSON text and its text: the map's entry
# and the key's tuple. 86 bytes measured with tracemalloc on CPython 3.11 (20,000
# messages of ~200 characters), rounded up.
ENCODED_OVERHEAD = 100
#: Per provider: 8 MiB, a thirty-second of ``LOOPFLOW_CACHE_MB``'s default 256.
DEFAULT_ENCODED_BYTES = 8 * 2**20

_Key = tuple[str, str]


def _dumps(value: Any) -> str:
    """JSON as the SDKs write it (raises ``ValueError`` for NaN or infinity, ``TypeError``
    for what JSON cannot hold)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encoded_bytes(key: _Key, encoded: str) -> int:
    """Approximately the bytes a remembered message takes: its JSON text, its text (the
    key's: once the message's conversation has ended or the message was deleted, the
    key is all that holds it) and :data:`ENCODED_OVERHEAD`."""
    return sys.getsizeof(encoded) + sys.getsizeof(key[1]) + ENCODED_OVERHEAD


class BodyEncoder:
    """Encodes request bodies, remembering each plain message's JSON (a message of only
    ``role`` and string ``content``) by role and text, at most ``max_bytes`` in all.
    Messages with parts (images, cache breakpoints) are encoded on each request."""

    def __init__(self, max_bytes: int = DEFAULT_ENCODED_BYTES) -> None:
        self._messages: Generations[_Key, str] = Generations(max_bytes, encoded_bytes)

    def encode(self, body: Mapping[str, Any]) -> bytes:
        """``body`` as UTF-8 JSON bytes: the same JSON value the SDK's own encoding
        gives. Surrogates, which UTF-8 cannot hold and the SDK's encoding fails the
        request on, are sent as a JSON reader takes their escapes (:func:`utf8`).
        Raises ``ValueError`` or ``TypeError`` as ``json.dumps`` does."""
        return utf8(self._text(body))

    def sendable(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` for an SDK that encodes it itself: ``body`` as it is, or, when it holds
        a surrogate, a copy holding what :meth:`encode` sends instead (:func:`utf8`)."""
        text = self._text(body)
        try:
            text.encode()
        except UnicodeEncodeError:
            copy: dict[str, Any] = json.loads(utf8(text))
            return copy
        return body

    def _text(self, body: Mapping[str, Any]) -> str:
        messages = body.get("messages")
        if not isinstance(messages, list):
            return _dumps(body)
        head = _dumps({name: value for name, value in body.items() if name != "messages"})
        pieces = ",".join([self._message(message) for message in messages])
        comma = "," if len(head) > 2 else ""  # head is "{...}"; "{}" has no member
        return f'{head[:-1]}{comma}"messages":[{pieces}]}}'

    def _message(self, message: Any) -> str:
        if not isinstance(message, dict) or len(message) != 2:
            return _dumps(message)
        role, content = message.get("role"), message.get("content")
        if type(role) is not str or type(content) is not str:
            return _dumps(message)
        key = (role, content)
        encoded = self._messages.get(key)
        if encoded is None:
            encoded = _dumps(message)
            self._messages.put(key, encoded)
        return encoded

    @property
    def bytes(self) -> int:
        """What the remembered messages weigh (at most ``max_bytes``)."""
        return self._messages.weight


def utf8(text: str) -> bytes:
    """``text`` as UTF-8, surrogates and all: a UTF-16 pair held as two code points
    (``"\\ud83c\\udf89"``, text built from escapes one at a time) as its one character
    (🎉), as a JSON reader takes the pair's two escapes; a surrogate without its other
    half (a ``\\ud800`` escape in an imported file, say) as ``?``."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        paired = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
        return paired.encode(errors="replace")


def takes_content(client: Any) -> bool:
    """Whether ``client.post`` sends raw bytes as ``content=``: openai from 2.16,
    anthropic from 0.76 (read from the released wheels); older releases get the body
    to encode themselves."""
    try:
        return "content" in inspect.signature(client.post).parameters
    except (TypeError, ValueError):  # no signature to read
        return False
