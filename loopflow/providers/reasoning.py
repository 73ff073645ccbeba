"""Reasoning text never reaches the reply: a streaming filter for ``<think>`` blocks.

Open reasoning models on compatible servers (DeepSeek-R1, QwQ, Qwen3 on Ollama, vLLM,
LM Studio) write their reasoning into the reply text as ``<think>…</think>`` before the
answer. :class:`ThinkFilter` cuts it from a stream of text pieces, whatever the
positions where the stream splits the tags, holding back only what may still turn out
to be a tag.

Only blocks *before* the answer are reasoning: once answer text has been seen, a
``<think>`` in it is the answer's own (a reply explaining how R1 marks its reasoning).
A block that is never closed (the token limit cut the reasoning) leaves nothing.

Some chat templates open the block in the prompt, so the reply starts inside it and
only closes it (``…reasoning…</think>answer``). With ``unopened=True`` (the model
table's ``starts_thinking`` families), everything up to the first ``</think>`` is
reasoning; a reply that never closes a block was all answer, released at the end.

Reasoning the API sends apart from the text (``reasoning_content``/``reasoning``
deltas, Anthropic's thinking blocks) is simply never read by the adapters.
"""

from __future__ import annotations

from loopflow.providers.base import Chunk

OPEN = "<think>"
CLOSE = "</think>"

_BEFORE, _INSIDE, _ANSWER, _UNOPENED = "before", "inside", "answer", "unopened"


class ThinkFilter:
    """Feed text pieces in order; get back the part people may see (see the module)."""

    def __init__(self, unopened: bool = False) -> None:
        self._state = _UNOPENED if unopened else _BEFORE
        self._held = ""

    @property
    def held(self) -> int:
        """Characters held back, waiting to know whether they are reasoning."""
        return len(self._held)

    def feed(self, text: str) -> str:
        """The visible part of everything fed so far that was not returned yet."""
        if self._state == _ANSWER:
            return text
        self._held += text
        visible = ""
        while True:
            if self._state == _UNOPENED:
                end = self._held.find(CLOSE)
                if end < 0:
                    return visible
                self._held = self._held[end + len(CLOSE) :]
                self._state = _BEFORE
            elif self._state == _INSIDE:
                end = self._held.find(CLOSE)
                if end < 0:
                    # Keep only what may be the start of the closing tag.
                    self._held = self._held[len(self._held) - _tag_prefix(self._held, CLOSE) :]
                    return visible
                self._held = self._held[end + len(CLOSE) :]
                self._state = _BEFORE
            elif self._state == _BEFORE:
                start = self._held.lstrip()
                if start.startswith(OPEN):
                    self._held = start[len(OPEN) :]
                    self._state = _INSIDE
                elif not start or OPEN.startswith(start):
                    return visible  # whitespace, or maybe a tag: wait for more
                else:
                    self._state = _ANSWER
                    visible, self._held = visible + start, ""
                    return visible
            else:
                return visible

    def visible(self, chunk: Chunk) -> Chunk | None:
        """``chunk`` with its reasoning text cut, or None when nothing of it is left to
        pass on (its text held back, no usage). The last chunk (the one with a finish
        reason) carries any held text; a chunk's usage passes even when its text is held.
        Once the answer has begun, chunks pass as they are."""
        text = self.feed(chunk.text) if chunk.text else ""
        if chunk.finish_reason is not None:
            return Chunk(text + self.finish(), chunk.usage, chunk.finish_reason)
        if text and text is chunk.text:  # the answer's text, untouched
            return chunk
        if text or chunk.usage is not None:
            return Chunk(text, chunk.usage)
        return None

    def rest(self) -> Chunk | None:
        """After a stream that ended without a finish reason: the held text that is
        answer after all, if any."""
        held = self.finish()
        return Chunk(held) if held else None

    def finish(self) -> str:
        """The end of the reply: whatever held text is answer after all."""
        held, self._held = self._held, ""
        if self._state == _UNOPENED:
            self._state = _ANSWER
            return held  # no block was ever closed: it was all answer
        if self._state == _BEFORE:
            self._state = _ANSWER
            return held.lstrip()  # a lone "<thi" is text, not a tag
        return ""  # inside an unclosed block: reasoning cut short


def without_thinking(text: str, unopened: bool = False) -> str:
    """``text`` with its leading reasoning cut (:class:`ThinkFilter` on one piece)."""
    think = ThinkFilter(unopened)
    return think.feed(text) + think.finish()


def _tag_prefix(text: str, tag: str) -> int:
    """The length of the longest end of ``text`` that begins ``tag``."""
    for size in range(min(len(text), len(tag) - 1), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
