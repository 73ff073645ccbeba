"""The selects "Ask a mate" keeps waiting: one per asker, a bounded number in all
(loopflow_cog/ask_mate.py)."""

from __future__ import annotations

from types import SimpleNamespace

from loopflow_cog import ask_mate
from loopflow_cog.ask_mate import AskMate


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
