"""The selects "Ask a mate" keeps waiting: one per asker, a bounded number in all
(loopflow_cog/ask_mate.py)."""

from __future__ import annotations

from types import SimpleNamespace

from loopflow.mates import generic_mate
from loopflow_cog import ask_mate
from loopflow_cog.ask_mate import AskMate, MateChoice, choice_prompt


class Select:
    """Stands in for a MateChoice: whose it is, and whether it was stopped or withdrawn."""

    def __init__(self, asker: int) -> None:
        self.origin = SimpleNamespace(user=SimpleNamespace(id=asker))
        self.stopped = False
        self.withdrawn = False

    def stop(self) -> None:
        self.stopped = True

    async def withdraw(self) -> None:
        self.stopped = self.withdrawn = True


def asking() -> AskMate:
    conversations = SimpleNamespace(store=None)
    return AskMate(None, None, conversations)  # type: ignore[arg-type]


async def test_one_select_per_asker_and_a_bounded_number_in_all(monkeypatch) -> None:
    monkeypatch.setattr(ask_mate, "MAX_PENDING", 2)
    menu = asking()
    first, again = Select(1), Select(1)
    assert await menu._waiting(first)  # type: ignore[arg-type]
    assert await menu._waiting(again)  # type: ignore[arg-type]
    assert first.withdrawn and not again.stopped
    assert await menu._waiting(Select(2))  # type: ignore[arg-type]
    third = Select(3)
    assert not await menu._waiting(third)  # type: ignore[arg-type]
    assert third.stopped and len(menu.pending) == 2
    assert await menu._waiting(Select(2))  # type: ignore[arg-type]  # the same asker again
    menu.left(first)  # type: ignore[arg-type]  # long replaced: changes nothing
    assert len(menu.pending) == 2
    menu.left(again)  # type: ignore[arg-type]
    assert await menu._waiting(third)  # type: ignore[arg-type]


async def test_the_unload_withdraws_every_select_still_waiting() -> None:
    menu = asking()
    waiting = [Select(asker) for asker in range(5)]
    for select in waiting:
        assert await menu._waiting(select)  # type: ignore[arg-type]
    await menu.aclose()
    assert all(select.withdrawn for select in waiting) and not menu.pending


async def test_the_select_holds_25_mates_a_row_in_up_to_five_rows() -> None:
    mates = [generic_mate(f"m{index:03d}") for index in range(130)]
    view = MateChoice(asking(), None, None, None, 1, mates)  # type: ignore[arg-type]
    selects = view.children
    assert [len(select.options) for select in selects] == [25, 25, 25, 25, 25]  # type: ignore[attr-defined]
    offered = [o.value for select in selects for o in select.options]  # type: ignore[attr-defined]
    assert offered == [mate.name for mate in mates[:125]]
    assert selects[1].placeholder == "Choose a mate (26-50)"  # type: ignore[attr-defined]
    view.stop()
    alone = MateChoice(asking(), None, None, None, 1, mates[:3])  # type: ignore[arg-type]
    assert [s.placeholder for s in alone.children] == ["Choose a mate"]  # type: ignore[attr-defined]
    alone.stop()


def test_the_prompt_says_when_not_every_mate_is_offered() -> None:
    assert choice_prompt(125) == "Which mate should answer?"
    assert choice_prompt(300) == (
        "Which mate should answer? The first 125 of 300 mates are offered: to ask another, "
        "bind it here or reply to one of its messages."
    )
