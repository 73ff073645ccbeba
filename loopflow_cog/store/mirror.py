"""One server's data as the store mirrors it in memory (see schema.py for what is stored);
its records (index, usage) are held apart, by records.py."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from loopflow.cost import MateUsage
from loopflow.errors import MateError
from loopflow.mates import Mate

log = logging.getLogger("red.loopflow.store")


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
    limits: dict[str, Any]  # LimitSettings.to_dict(), {} for none
    # The usage ledgers read from the records' ``usage`` so far (parsed once, kept in
    # step: the store writes each one back into the records when it changes).
    ledgers: dict[str, MateUsage] = field(default_factory=dict)
    # Mates whose ledger changed since it was last put into the records: put there when
    # the records are written (:meth:`usage_into`), not on every reply.
    unsaved_usage: set[str] = field(default_factory=set)

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> GuildState:
        """Built from the guild scope's ``data``."""
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
            dict(data.get("limits") or {}),
        )

    def mate_usage(self, name: str, records: dict[str, Any]) -> MateUsage:
        """A mate's usage per model and day, from the server's ``records`` the first time
        (empty when none is stored, or when what is stored cannot be read: logged, and
        counted afresh)."""
        ledger = self.ledgers.get(name)
        if ledger is None:
            try:
                ledger = MateUsage.from_dict(usage_of(records).get(name) or {})
            except ValueError:
                log.warning("The stored usage of %r could not be read; it starts over", name)
                ledger = MateUsage()
            self.ledgers[name] = ledger
        return ledger

    def forget_usage(self, name: str, records: dict[str, Any]) -> bool:
        """Drop a mate's usage (from ``records`` too); True if it had any."""
        self.ledgers.pop(name, None)
        self.unsaved_usage.discard(name)
        return usage_of(records).pop(name, None) is not None

    def usage_into(self, records: dict[str, Any]) -> None:
        """Put the ledgers that changed since the last time into ``records`` (as
        ``MateUsage.to_dict()``): the records are about to be written."""
        usage = usage_of(records)
        for name in self.unsaved_usage:
            ledger = self.ledgers.get(name)
            if ledger is not None:
                usage[name] = ledger.to_dict()
        self.unsaved_usage.clear()


def usage_of(records: dict[str, Any]) -> dict[str, Any]:
    """A records document's usage: mate -> ``MateUsage.to_dict()``, as stored."""
    return records.setdefault("usage", {})
