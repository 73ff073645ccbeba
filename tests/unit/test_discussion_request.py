"""Reading `[p]mate discuss [rounds] <mate> <mate> [more mates...] <topic>`."""

from __future__ import annotations

import pytest

from loopflow.chat.discussion import MAX_MATES
from loopflow.mates import Mate, builtin_mate
from loopflow_cog.discussion_commands import DiscussionInputError, parse_discussion

MAYA, MERLIN = builtin_mate("maya"), builtin_mate("merlin")
PIP = Mate("pip", "Pip", "You are Pip.")
SEVEN = Mate("7", "Seven", "You are Seven.")
MATES = {mate.name: mate for mate in (MAYA, MERLIN, PIP, SEVEN)}


def names(text: str) -> tuple[int | None, list[str], str]:
    request = parse_discussion(text, MATES)
    return request.rounds, [mate.name for mate in request.mates], request.topic


def test_rounds_mates_and_topic() -> None:
    assert names("maya merlin tabs or spaces?") == (None, ["maya", "merlin"], "tabs or spaces?")
    assert names("2 merlin maya pip  tabs,  or spaces") == (
        2,
        ["merlin", "maya", "pip"],
        "tabs,  or spaces",  # the topic keeps its spacing
    )
    assert names("Maya, @Merlin: the  plan") == (None, ["maya", "merlin"], "the  plan")
    # A mate named again starts the topic; so does any word that names no mate.
    assert names("maya merlin maya is right") == (None, ["maya", "merlin"], "maya is right")
    assert names("maya merlin 3 ideas") == (None, ["maya", "merlin"], "3 ideas")
    assert names("25 maya merlin x") == (25, ["maya", "merlin"], "x")  # the caller caps it


def test_a_number_that_names_a_mate() -> None:
    assert names("7 maya merlin hi") == (7, ["maya", "merlin"], "hi")
    assert names("7 maya hi") == (None, ["7", "maya"], "hi")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("maya tabs or spaces", "`tabs` is not a mate here: name at least two mates"),
        ("2 maya ghost, topic", "`ghost` is not a mate here"),
        ("maya", "Name at least two mates, then the topic."),
        ("maya Maya, topic", "`Maya` is named twice: name at least two different mates"),
        ("", "Name at least two mates, then the topic."),
        ("maya merlin", "Give the topic after the mates."),
        ("3 maya merlin pip", "Give the topic after the mates."),
    ],
)
def test_what_cannot_start_says_why(text: str, message: str) -> None:
    with pytest.raises(DiscussionInputError, match=message.replace("?", r"\?")):
        parse_discussion(text, MATES)


def test_at_most_ten_mates() -> None:
    many = {f"m{i}": Mate(f"m{i}", f"M{i}", "You are M.") for i in range(MAX_MATES + 1)}
    text = " ".join(many) + " a topic"
    with pytest.raises(DiscussionInputError, match=f"at most {MAX_MATES} mates"):
        parse_discussion(text, many)
