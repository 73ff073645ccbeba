"""What tokens cost: usage completed with estimates, priced, and kept per UTC day.

* :func:`fill_usage`: a request's :class:`~loopflow.providers.base.Usage` as the provider
  reported it, with loopflow's own count where it reported none (a compatible server
  without usage, a reply stopped midway), marked ``estimated``.
* :func:`cost`: the USD a usage costs at a model's :class:`~loopflow.pricing.Prices`
  (:func:`loopflow.pricing.prices_for`); None when the prices are unknown. A model
  priced by prompt length has its longer requests counted apart
  (:func:`loopflow.pricing.usage_key`), so every sum is priced at its own tier.
* :class:`UsageLedger`: usage per UTC day for the last :data:`LEDGER_DAYS` days, older
  days rolled into one total; :class:`MateUsage`: one mate's ledgers per model, and its
  :class:`UsageSummary` (tokens and cost today, in 30 days, in total). Plain values the
  store persists as small JSON.

Days are UTC dates: limits reset at 00:00 UTC (:mod:`loopflow.chat.limits`), and a day's
usage must be the same for every admin, whatever their time zone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from loopflow.pricing import Prices, prices_for, usage_key
from loopflow.providers.base import Usage

#: Days a ledger keeps one by one (today included): enough for "the last 30 days"
#: shown on any day, with room for a late record; older days are rolled into a total.
LEDGER_DAYS = 35


def fill_usage(
    reported: Usage | None,
    input_estimate: int,
    output_estimate: Callable[[], int],
    *,
    stopped: bool = False,
) -> Usage:
    """The usage to count for one request.

    ``reported`` is what the provider billed (None: it reported nothing). An input of 0
    becomes ``input_estimate`` (the request's token count), and an output of 0 for a
    reply with text becomes ``output_estimate()`` (the reply counted by the model's
    tokenizer): a provider bills no request nothing. A ``stopped`` reply (closed before
    the provider's last usage) keeps the input the provider reported so far (Anthropic's
    ``message_start``) and takes the estimate for its output. Any estimate marks the
    result ``estimated``.
    """
    usage = reported or Usage()
    input_tokens, output_tokens = usage.input_tokens, usage.output_tokens
    estimated = usage.estimated or stopped
    if input_tokens == 0 and input_estimate > 0:
        input_tokens, estimated = input_estimate, True
    if stopped:
        output_tokens = output_estimate()
    elif output_tokens == 0:
        counted = output_estimate()
        if counted:
            output_tokens, estimated = counted, True
    return Usage(
        input_tokens,
        output_tokens,
        usage.cached_input_tokens,
        usage.cache_write_tokens,
        estimated,
    )


def cost(usage: Usage, prices: Prices | None) -> float | None:
    """What ``usage`` costs in USD at ``prices`` (per million tokens); None when the
    prices are unknown. Cached input costs the cached price, cache writes the write
    price, the rest of the input the input price; output (reasoning included) the
    output price. ``prices`` are taken flat (their base tier): for one request of a
    model priced by prompt length pass ``prices.for_prompt(usage.input_tokens)``; sums
    are kept one tier apart by :class:`MateUsage`."""
    if prices is None:
        return None
    millionths = (
        usage.uncached_input_tokens * prices.input
        + usage.cached_input_tokens * prices.cached_input
        + usage.cache_write_tokens * prices.cache_write
        + usage.output_tokens * prices.output
    )
    return millionths / 1_000_000


def utc_day(at: datetime) -> date:
    """The UTC date of ``at``; a naive ``at`` is taken as UTC already."""
    if at.tzinfo is None:
        return at.date()
    return at.astimezone(timezone.utc).date()


@dataclass
class UsageLedger:
    """One mate's usage per UTC day.

    ``days`` holds the last :data:`LEDGER_DAYS` days (today included) one by one;
    ``older`` is the sum of every day before them. Adding prunes: a day that falls out of
    the window is added to ``older``, so :meth:`total` never changes by pruning.

    Stored as :meth:`to_dict` (``{"days": {"2026-11-30": [in, out, cached, ...]},
    "older": [...]}``, each usage a short list of ints: :meth:`Usage.to_list`); at most
    36 small lists per mate.
    """

    days: dict[date, Usage] = field(default_factory=dict)
    older: Usage = field(default_factory=Usage)

    def add(self, usage: Usage, at: datetime) -> None:
        """Count ``usage`` on the UTC day of ``at`` (aware; naive is taken as UTC), then
        prune the days before the window that ends on the newest day counted (a late
        record of a day long gone goes straight to :attr:`older`)."""
        day = utc_day(at)
        self.days[day] = self.days.get(day, Usage()) + usage
        self.prune(max(self.days))

    def prune(self, today: date | datetime) -> None:
        """Roll the days older than the :data:`LEDGER_DAYS` days ending ``today`` into
        :attr:`older`."""
        first = _day(today) - timedelta(days=LEDGER_DAYS - 1)
        for day in [day for day in self.days if day < first]:
            self.older = self.older + self.days.pop(day)

    def today(self, now: datetime) -> Usage:
        """The usage of ``now``'s UTC day."""
        return self.days.get(utc_day(now), Usage())

    def last_days(self, count: int, now: datetime) -> Usage:
        """The usage of the ``count`` UTC days ending with ``now``'s (today included);
        ``count`` is at most :data:`LEDGER_DAYS`, else :class:`ValueError`."""
        if not 1 <= count <= LEDGER_DAYS:
            raise ValueError(f"a ledger keeps 1 to {LEDGER_DAYS} days, not {count}")
        last = utc_day(now)
        first = last - timedelta(days=count - 1)
        total = Usage()
        for day, usage in self.days.items():
            if first <= day <= last:
                total = total + usage
        return total

    def total(self) -> Usage:
        """Everything ever counted."""
        total = self.older
        for usage in self.days.values():
            total = total + usage
        return total

    def __add__(self, other: UsageLedger) -> UsageLedger:
        """Two ledgers merged day by day (a server's mates summed, say)."""
        days = dict(self.days)
        for day, usage in other.days.items():
            days[day] = days.get(day, Usage()) + usage
        return UsageLedger(days, self.older + other.older)

    def to_dict(self) -> dict[str, Any]:
        """Compact JSON: ISO dates to :meth:`Usage.to_list` lists, days in order."""
        return {
            "days": {day.isoformat(): self.days[day].to_list() for day in sorted(self.days)},
            "older": self.older.to_list(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UsageLedger:
        """The inverse of :meth:`to_dict`. Raises :class:`ValueError` for data that is
        not a stored ledger (a bad date or usage list)."""
        stored = data.get("days", {}) if isinstance(data, Mapping) else None
        try:
            if not isinstance(stored, Mapping):
                raise TypeError("no days")
            days = {date.fromisoformat(day): Usage.from_list(v) for day, v in stored.items()}
            return cls(days, Usage.from_list(data.get("older", [])))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not a stored usage ledger: {data!r:.80}") from exc

    @classmethod
    def from_total(cls, total: Usage) -> UsageLedger:
        """A ledger holding an older total with no days (counters kept before days were)."""
        return cls(older=total)


#: Models a :class:`MateUsage` keeps apart; the least recently used beyond them are
#: folded into one rest (:data:`OTHER_MODELS`), whose cost is unknown.
MAX_MODELS = 8
OTHER_MODELS = ""


@dataclass(frozen=True)
class UsageSummary:
    """What ``[p]mate usage`` shows of one mate: tokens today (UTC), in the last 30 days
    (today included) and in total, and what each cost in USD (None: unknown, because some
    of those tokens were of a model without a price)."""

    today: Usage
    last_30_days: Usage
    total: Usage
    cost_today: float | None
    cost_30_days: float | None
    cost_total: float | None


@dataclass
class MateUsage:
    """One mate's usage per model, each a :class:`UsageLedger`: a mate's model changes
    (its own setting, the server's default), and each model has its own prices (a model
    priced by prompt length has two ledgers, one per tier: :meth:`add`).

    At most :data:`MAX_MODELS` models are kept apart, the most recently used; older ones
    are folded into :data:`OTHER_MODELS`. Stored as :meth:`to_dict`: model name to
    :meth:`UsageLedger.to_dict`.
    """

    ledgers: dict[str, UsageLedger] = field(default_factory=dict)

    def add(self, model: str, usage: Usage, at: datetime) -> None:
        """Count one request's ``usage`` of ``model`` on the UTC day of ``at`` (see
        :meth:`UsageLedger.add`), under :func:`~loopflow.pricing.usage_key`: a request
        over its model's long-prompt threshold is kept apart, priced at that tier."""
        model = usage_key(model, usage)
        ledger = self.ledgers.pop(model, None) or UsageLedger()
        ledger.add(usage, at)
        self.ledgers[model] = ledger  # the newest last
        apart = [name for name in self.ledgers if name != OTHER_MODELS]
        for name in apart[: max(0, len(apart) - MAX_MODELS)]:
            rest = self.ledgers.pop(OTHER_MODELS, UsageLedger()) + self.ledgers.pop(name)
            rest.prune(max(rest.days, default=utc_day(at)))
            self.ledgers = {OTHER_MODELS: rest, **self.ledgers}

    def summary(self, now: datetime, overrides: Mapping[str, Prices] | None = None) -> UsageSummary:
        """Tokens and cost today, in the last 30 days and in total, as of ``now``, at the
        shipped prices under the owner's ``overrides``
        (:func:`loopflow.pricing.prices_for`)."""
        periods: tuple[Callable[[UsageLedger], Usage], ...] = (
            lambda ledger: ledger.today(now),
            lambda ledger: ledger.last_days(30, now),
            UsageLedger.total,
        )
        usages = []
        costs: list[float | None] = []
        for period in periods:
            tokens, spent = Usage(), 0.0
            priced = True
            for model, ledger in self.ledgers.items():
                usage = period(ledger)
                tokens = tokens + usage
                price = prices_for(model, overrides) if model != OTHER_MODELS else None
                amount = cost(usage, price) if usage.total_tokens else 0.0
                if amount is None:
                    priced = False
                else:
                    spent += amount
            usages.append(tokens)
            costs.append(spent if priced else None)
        return UsageSummary(usages[0], usages[1], usages[2], costs[0], costs[1], costs[2])

    def to_dict(self) -> dict[str, Any]:
        """``{model: ledger.to_dict()}``, the least recently used model first."""
        return {model: ledger.to_dict() for model, ledger in self.ledgers.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MateUsage:
        """The inverse of :meth:`to_dict`; :class:`ValueError` for anything else."""
        if not isinstance(data, Mapping):
            raise ValueError(f"not a stored usage per model: {data!r:.80}")
        return cls({str(model): UsageLedger.from_dict(v) for model, v in data.items()})


def _day(value: date | datetime) -> date:
    return utc_day(value) if isinstance(value, datetime) else value
