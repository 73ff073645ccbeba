"""What ``[p]mate usage`` shows (PRODUCT.md section 12): per mate, tokens in / cached /
out and the estimated cost in USD, today (UTC), in the last 30 days and in total."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import humanize_number

from loopflow.cost import MateUsage, UsageSummary
from loopflow.pricing import PRICES_AS_OF, Prices
from loopflow.providers.base import Usage

_ = Translator("Loopflow", __file__)


def usage_lines(
    names: Sequence[str],
    usage: Mapping[str, MateUsage],
    now: datetime,
    overrides: Mapping[str, Prices],
) -> list[str]:
    """The price list's date, then one line per mate in ``names``. A line stays far under
    Discord's 2,000 characters (at most ~250), so
    :func:`~redbot.core.utils.chat_formatting.pagify` pages whole lines."""
    lines = [
        _("-# Estimated costs in USD at list prices as of {date} (and the owner's).").format(
            date=PRICES_AS_OF
        )
    ]
    for name in names:
        used = usage.get(name)
        if used is None or not used.ledgers:
            lines.append(_("`{name}`: no tokens used yet").format(name=name))
            continue
        lines.append(
            _("`{name}`: {periods}").format(
                name=name, periods=_periods(used.summary(now, overrides))
            )
        )
    return lines


def _periods(summary: UsageSummary) -> str:
    rows = (
        (_("today"), summary.today, summary.cost_today),
        (_("30 days"), summary.last_30_days, summary.cost_30_days),
        (_("total"), summary.total, summary.cost_total),
    )
    return " · ".join(
        _("{period} {tokens}, {cost}").format(period=period, tokens=_tokens(u), cost=_cost(c))
        for period, u, c in rows
    )


def _tokens(usage: Usage) -> str:
    return _("{input} in / {cached} cached / {output} out").format(
        input=humanize_number(usage.input_tokens),
        cached=humanize_number(usage.cached_input_tokens),
        output=humanize_number(usage.output_tokens),
    )


def _cost(amount: float | None) -> str:
    if amount is None:
        return _("cost unknown")
    if amount and amount < 0.01:
        return f"${amount:.4f}"
    return f"${amount:,.2f}"
