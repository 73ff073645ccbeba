"""One server's data as the store mirrors it in memory (see schema.py for what is stored)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loopflow.errors import MateError
from loopflow.mates import Mate


@dataclass
class GuildState:
    """One server's stored data as the store holds it in memory."""

    mates: dict[str, Mate]  # in creation order
    created: dict[str, int]  # mate -> its place in that order, as stored with it
    bindings: dict[int, list[str]]
    models: dict[str, str]
    cooldown: int
    threads: dict[int, int]
    webhooks: list[int]  # oldest first
    records: dict[str, Any]  # the stored document itself: index and usage

    @classmethod
    def from_stored(cls, data: dict[str, Any], records: dict[str, Any]) -> GuildState:
        """Built from the guild scope's ``data`` and the server's records document (kept,
        not copied: the store changes it in place)."""
        mates: dict[str, Mate] = {}
        created: dict[str, int] = {}
        # Sorted: PostgreSQL's jsonb keeps no key order. Schema 1 stored no "created".
        stored = sorted(data["mates"].items(), key=lambda kv: int(kv[1].get("created", 0)))
        for name, fields in stored:
            try:
                mates[name] = Mate.from_dict(fields)
            except MateError:
                continue  # a mate stored by a future version with stricter fields
            created[name] = int(fields.get("created", 0))
        return cls(
            mates,
            created,
            {int(k): list(v) for k, v in data["bindings"].items()},
            dict(data["models"]),
            int(data["cooldown"]),
            {int(k): int(v) for k, v in data["threads"].items()},
            [int(i) for i in data["webhooks"]],
            records,
        )

    @property
    def message_index(self) -> dict[str, str]:
        """str(message id) -> ``"mate"`` or ``"mate:answered message id"``, oldest first."""
        return self.records["index"]

    @property
    def usage(self) -> dict[str, dict[str, int]]:
        """Mate -> ``{"input": tokens, "output": tokens}``."""
        return self.records["usage"]
