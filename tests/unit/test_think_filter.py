"""Reasoning text (``<think>`` blocks) is cut from replies, wherever the stream splits them."""

from __future__ import annotations

import pytest

from loopflow.providers.base import Chunk, Usage
from loopflow.providers.reasoning import ThinkFilter, without_thinking

CASES = [
    # (reply as the model wrote it, what people may see)
    ("<think>Plan: greet them.</think>\n\nHello there.", "Hello there."),
    ("\n <think>a</think>\n<think>b\nc</think>Answer", "Answer"),
    ("<think>\n</think>\n\nHi!", "Hi!"),
    ("No thinking here.", "No thinking here."),
    ("Tags later stay: <think>x</think> is how R1 marks it.", None),
    ("<think>never closed, cut by the token limit", ""),
    ("<think></think>", ""),
    ("<thinking>not our tag</thinking> ok", None),
    ("<thi", None),
    ("a < b and c > d", None),
    ("<", None),
    ("", ""),
]


def feed_in_pieces(pieces: list[str], unopened: bool = False) -> str:
    think = ThinkFilter(unopened=unopened)
    return "".join(think.feed(piece) for piece in pieces) + think.finish()


def every_split(text: str) -> list[list[str]]:
    """The text in two pieces at every position, in three at every pair, and by char."""
    splits = [[text[:i], text[i:]] for i in range(len(text) + 1)]
    splits += [
        [text[:i], text[i:j], text[j:]]
        for i in range(len(text) + 1)
        for j in range(i, min(len(text), i + 12) + 1)
    ]
    return [*splits, list(text)]


@pytest.mark.parametrize(("reply", "visible"), CASES)
def test_think_blocks_are_cut_at_every_split_position(reply: str, visible: str | None) -> None:
    expected = reply.strip() if visible is None else visible
    for pieces in every_split(reply):
        assert feed_in_pieces(pieces).strip() == expected, pieces
    assert without_thinking(reply).strip() == expected


UNOPENED = [
    # A chat template that opens the block in the prompt: the reply starts inside it.
    ("Let me think.\nThey said hi.\n</think>\n\nHello!", "Hello!"),
    ("<think>opened anyway</think>Hi", "Hi"),
    ("Just an answer, no reasoning at all.", "Just an answer, no reasoning at all."),
    ("thinking that never ends", "thinking that never ends"),
]


@pytest.mark.parametrize(("reply", "visible"), UNOPENED)
def test_a_reply_that_starts_inside_a_think_block(reply: str, visible: str) -> None:
    for pieces in every_split(reply):
        assert feed_in_pieces(pieces, unopened=True).strip() == visible, pieces


def test_answer_text_streams_without_waiting_for_the_end() -> None:
    think = ThinkFilter()
    assert think.feed("Hel") == "Hel"
    assert think.feed("lo <think>") == "lo <think>"
    assert think.finish() == ""


def test_only_a_possible_tag_is_held_back() -> None:
    think = ThinkFilter()
    assert think.feed("  <th") == ""
    assert think.feed("ink>secret</thi") == ""
    assert think.feed("nk>Vis") == "Vis"
    assert think.feed("ible") == "ible"


def test_a_long_think_block_is_not_kept_in_memory() -> None:
    think = ThinkFilter()
    assert think.feed("<think>") == ""
    for _ in range(10_000):
        assert think.feed("reasoning " * 10) == ""
    assert think.held < 20
    assert think.feed("</think>ok") == "ok"


def test_chunks_pass_with_their_reasoning_cut_and_their_usage_kept() -> None:
    think = ThinkFilter()
    started = Usage(10, 0)
    assert think.visible(Chunk("<think>plan", started)) == Chunk("", started)  # usage passes
    assert think.visible(Chunk(" more</th")) is None  # held, nothing to pass on
    assert think.visible(Chunk("ink>Hello")) == Chunk("Hello")
    answer = Chunk(" there")
    assert think.visible(answer) is answer  # once the answer began, chunks pass as they are
    done = think.visible(Chunk("", Usage(10, 5), "stop"))
    assert done == Chunk("", Usage(10, 5), "stop") and done.finish_reason == "stop"
    assert think.rest() is None


def test_held_text_comes_out_with_the_last_chunk_or_at_the_end() -> None:
    final = ThinkFilter()
    assert final.visible(Chunk("<thi")) is None  # maybe a tag
    assert final.visible(Chunk("", finish_reason="stop")) == Chunk("<thi")
    cut = ThinkFilter(unopened=True)  # the template opened the block: all of it waits
    assert cut.visible(Chunk("no block closed")) is None
    assert cut.rest() == Chunk("no block closed")
