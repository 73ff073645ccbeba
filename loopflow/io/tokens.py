"""Token counting that works offline.

OpenAI models are counted with their real BPE encoding (``o200k_base`` or
``cl100k_base``) from ``bpe-openai``, which ships the encoding files inside its wheel:
unlike ``tiktoken`` it never downloads anything on first use. Other models (Claude,
Llama, Qwen, ... on compatible servers) have no offline tokenizer, so their count is
an estimate: the ``o200k_base`` count scaled by a factor calibrated to err on the
large side (Claude's tokenizer yields about 20-30% more tokens than ``o200k_base`` on
English prose and code). Overestimating only trims a little early; underestimating
would fail the request.
"""

from __future__ import annotations

import math
import sys

import bpe_openai

from loopflow.chat.bounded import LRUMap
from loopflow.models import token_encoding

# Per-message framing tokens (role markers) and the tokens that prime the reply.
MESSAGE_OVERHEAD = 4
REPLY_PRIMING = 3
# A vision input costs a few hundred tokens at low detail; count a safe flat amount.
IMAGE_TOKENS = 800


def encoding_name(provider: str, model: str) -> tuple[str, float]:
    """The BPE encoding to count ``model`` with, and the factor to scale counts by.

    A factor of 1.0 means the count is exact. The families and factors are the model
    table's (:func:`loopflow.models.token_encoding`).
    """
    return token_encoding(provider, model)


# Memory of one cached count besides its text, measured with tracemalloc on CPython 3.11
# (BENCHMARKS.md, "Caches"): the map's entry and the int, ~130-160 B, rounded up.
COUNT_OVERHEAD = 160
DEFAULT_COUNT_CACHE_BYTES = 32 * 2**20  # per counter: an eighth of LOOPFLOW_CACHE_MB's 256


def count_cache_bytes(text: str, tokens: int = 0) -> int:
    """Approximately the bytes a cached count of ``text`` takes: the text as CPython
    stores it (``sys.getsizeof``) and :data:`COUNT_OVERHEAD`."""
    return sys.getsizeof(text) + COUNT_OVERHEAD


class TokenCounter:
    """Counts tokens for one encoding and factor, remembering recent texts.

    A conversation's messages are counted once each, not again on every turn: the
    cache holds the counts of the most recently counted texts that weigh ``cache_bytes``
    in all (:func:`count_cache_bytes`; a long text weighs what it is).
    """

    def __init__(
        self,
        encoding: str = "o200k_base",
        factor: float = 1.0,
        cache_bytes: int = DEFAULT_COUNT_CACHE_BYTES,
    ):
        self._encoding = bpe_openai.get_encoding(encoding)
        self.factor = factor
        self._cache: LRUMap[str, int] = LRUMap(cache_bytes, weigh=count_cache_bytes)

    @property
    def exact(self) -> bool:
        """Whether counts are the model's real token counts rather than estimates."""
        return self.factor == 1.0

    def count(self, text: str) -> int:
        """Tokens in ``text`` (estimated when the counter is not exact)."""
        cached = self._cache.get(text)  # a use: now the newest
        if cached is not None:
            return cached
        tokens = len(self._encoding.encode_ordinary(text))
        result = math.ceil(tokens * self.factor)
        self._cache[text] = result
        return result

    def truncate(self, text: str, tokens: int) -> str:
        """The longest prefix of ``text`` (cut at a token boundary, never inside a
        character) that counts at most ``tokens``; ``text`` itself when it fits.

        Not cached: truncation is for the rare message over the whole budget.
        """
        ids = self._encoding.encode_ordinary(text)
        if math.ceil(len(ids) * self.factor) <= tokens:
            return text
        keep = max(0, math.floor(tokens / self.factor))
        while True:
            prefix = self._encoding.decode_bytes(ids[:keep]).decode("utf-8", errors="ignore")
            # A prefix may re-encode into a few more tokens than the ids it came from.
            over = math.ceil(len(self._encoding.encode_ordinary(prefix)) * self.factor) - tokens
            if over <= 0 or keep == 0:
                return prefix
            keep = max(0, keep - max(1, math.ceil(over / self.factor)))

    def count_message(self, text: str, images: int = 0) -> int:
        """Tokens one chat message costs: its text, its framing and its images."""
        return self.count(text) + MESSAGE_OVERHEAD + images * IMAGE_TOKENS


MODELS_REMEMBERED = 256
"""Models whose counter :meth:`TokenCounters.for_model` remembers (least recently used
first out): a bot talks to a few; each name is matched against the model table once."""


class TokenCounters:
    """One :class:`TokenCounter` per encoding and factor, built on first use, each with
    a cache of ``cache_bytes``."""

    def __init__(self, cache_bytes: int = DEFAULT_COUNT_CACHE_BYTES) -> None:
        self.cache_bytes = cache_bytes
        self._counters: dict[tuple[str, float], TokenCounter] = {}
        # (provider, model) -> its counter: the model table's lookup (a few regular
        # expressions) once per model, not on every request.
        self._by_model: LRUMap[tuple[str, str], TokenCounter] = LRUMap(MODELS_REMEMBERED)

    def for_model(self, provider: str, model: str) -> TokenCounter:
        """The counter for ``model`` served by ``provider``."""
        counter = self._by_model.get((provider, model))
        if counter is None:
            key = encoding_name(provider, model)
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = TokenCounter(*key, cache_bytes=self.cache_bytes)
            self._by_model[(provider, model)] = counter
        return counter
