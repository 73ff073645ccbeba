"""Scenarios on a real Red process with loopflow loaded, against the fake Discord and LLM.

One ``RedBench`` starts the servers (in this process's threads) and an unmodified Red
(a subprocess, through the e2e harness), loads loopflow, the baseline cog
(``baseline_cog.py``) and the floor (``floor_cog.py``), creates maya and merlin, and runs
the scenarios; the turn overhead and the bursts alternate ours with the floor's, so that
their ratios hold on any machine. Every time comes from the servers (see ``servers.py``).
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import psutil
from baseline_cog import CHANNEL_PREFIX, PACKAGE, write_baseline_cog
from cold_start import cold_start
from floor_cog import CHANNEL_PREFIX as FLOOR_PREFIX
from floor_cog import PACKAGE as FLOOR_PACKAGE
from floor_cog import SDK_CHANNEL_PREFIX as SDK_FLOOR_PREFIX
from floor_cog import write_floor_cog
from servers import (
    ROOT,
    Call,
    Created,
    RedProcess,
    TimedDiscord,
    TimedLLM,
    run_blocking,
    start_llm,
)

WEBHOOK_POST = "POST /webhooks/{webhook_id}/{webhook_token}"
HISTORY_GET = "GET /channels/{channel_id}/messages"


@dataclass
class TurnRecord:
    """One answered message: the person's message and the reply's dispatch record."""

    sent_id: int
    text: str
    sent: Created
    reply: Created


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


class RedBench:
    """The servers, a Red process with loopflow and the baseline loaded, and maya."""

    def __init__(self, root: Path, log: Callable[[str], None]) -> None:
        self.root = root
        self.log = log
        self.discord = TimedDiscord().start()
        self.llm_handle = start_llm()
        self.llm: TimedLLM = self.llm_handle.server  # type: ignore[assignment]
        self.nonce = uuid.uuid4().hex[:6]
        url = self.llm.openai_base_url
        env = {
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": url,
            "ANTHROPIC_API_KEY": "sk-ant-bench",
            "ANTHROPIC_BASE_URL": self.llm.anthropic_base_url,
            "LOOPFLOW_TIMEOUT": "30",
        }
        self.red = RedProcess(self.discord, root / "red", env=env, start_timeout=120)
        self.member = self.discord.member.username
        self.member_name = self.discord.member.display_name
        self.bot_id = self.discord.bot_user.id

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Set up and start Red, load loopflow and the baseline, create maya."""
        started = time.monotonic()
        self.red.setup()
        self.red.start()
        cogs = write_baseline_cog(self.root / "cogs")
        write_floor_cog(cogs)
        run_blocking(self.red.addpath(ROOT), timeout=60)
        run_blocking(self.red.addpath(cogs), timeout=60)
        run_blocking(self.red.load("loopflow", PACKAGE, FLOOR_PACKAGE), timeout=90)
        for name in ("maya", "merlin"):
            answer = self.command(f"!mate create {name}")
            if not answer.startswith(f"Created **{name.title()}**"):
                raise RuntimeError(f"!mate create {name}: {answer}")
        self.log(f"Red ready with loopflow in {time.monotonic() - started:.1f}s")

    def close(self) -> None:
        """Stop Red and the servers."""
        try:
            self.red.close()
        finally:
            self.llm_handle.stop()
            self.discord.stop()

    def command(self, text: str, channel: str = "admin") -> str:
        """Run a command as the owner; the bot's answer."""
        sent = run_blocking(
            self.discord.command(self.discord.owner, channel, text, timeout=30), timeout=40
        )
        return sent.content

    def gc_pauses(self) -> tuple[float, int]:
        """Seconds Red's garbage collector has paused so far, and its full collections
        (the floor cog's ``!benchgc``)."""
        clock = json.loads(self.command("!benchgc"))
        return sum(clock["seconds"]), clock["collections"][2]

    def red_cpu(self) -> float:
        """CPU seconds the Red process has used so far."""
        proc = self.red._proc  # the harness keeps the Popen private; only its pid is read
        assert proc is not None, "Red is not running"
        times = psutil.Process(proc.pid).cpu_times()
        return times.user + times.system

    def channel(self, name: str, *, bind: bool = True, prefill: int = 0, mate: str = "maya") -> int:
        """A new text channel, optionally with ``prefill`` earlier messages, bound to ``mate``."""
        channel = run_blocking(self.discord.create_channel(name), timeout=20)
        if prefill:
            people = [self.discord.owner.username, self.member]
            for i in range(prefill):
                text = f"earlier message {i}: the deploy went fine, the disk is at {i}%"
                self.discord.post(people[i % 2], channel.id, text)
        if bind:
            answer = self.command(f"!mate channel add {mate} <#{channel.id}>")
            if "now answers" not in answer:
                raise RuntimeError(f"binding {name}: {answer}")
        return channel.id

    # --- turns ---------------------------------------------------------------------------

    def turn(self, channel_id: int, tag: str, timeout: float = 30) -> TurnRecord:
        """The member says something in ``channel_id``; wait for the answer (mate or bot)."""
        text = f"{tag} {self.nonce}"
        sent_id = self.discord.post(self.member, channel_id, text)
        reply = self.discord.wait_created(
            lambda c: (
                c.channel_id == channel_id
                and c.message_id > sent_id
                and (c.webhook or c.author_id == self.bot_id)
            ),
            timeout=timeout,
        )[0]
        return TurnRecord(sent_id, text, self.discord.created_by_id(sent_id), reply)

    def user_text(self, record: TurnRecord) -> str:
        """What the LLM sees as the turn's last user message."""
        return f"{self.member_name}: {record.text}"

    def per_turn_calls(self, records: list[TurnRecord], end: float) -> list[list[Call]]:
        """Each turn's REST calls: from its message's dispatch to the next one's."""
        calls = self.discord.calls(since=records[0].sent.time)
        bounds = [r.sent.time for r in records[1:]] + [end]
        return [
            [c for c in calls if r.sent.time <= c.time < stop] for r, stop in zip(records, bounds)
        ]

    # --- scenarios -------------------------------------------------------------------------

    def turn_overhead(self, turns: int, gap: float = 0.05, blocks: int = 4) -> dict[str, Any]:
        """Zero-latency LLM and Discord: the cog's own time on each turn's critical path,
        the floor's (``floor_cog.py``) and the floor's through the official SDK in the
        same run, turns alternating between the three. ``blocks``: the turns are cut into
        that many consecutive blocks, each giving a ratio of p50s (the figure's spread)."""
        channel_id = self.channel("bench-overhead")
        floor_id = self.channel(f"{FLOOR_PREFIX}-overhead", bind=False)
        sdk_id = self.channel(f"{SDK_FLOOR_PREFIX}-overhead", bind=False)
        for i in range(3):  # the first turn is cold (history fetch, webhook creation)
            self.turn(channel_id, f"warmup {i}")
            self.turn(floor_id, f"warmup {i}")
            self.turn(sdk_id, f"warmup {i}")
            time.sleep(gap)
        records: list[TurnRecord] = []
        floors: list[TurnRecord] = []
        sdk_floors: list[TurnRecord] = []
        cpu = {"ours": 0.0, "floor": 0.0, "sdk": 0.0}
        for i in range(turns):
            for kind, channel, tag, out in (
                ("ours", channel_id, "turn", records),
                ("floor", floor_id, "floor turn", floors),
                ("sdk", sdk_id, "sdk floor turn", sdk_floors),
            ):
                before = self.red_cpu()
                out.append(self.turn(channel, f"{tag} {i}"))
                time.sleep(gap)
                cpu[kind] += self.red_cpu() - before
        end = time.time()
        ours = self._overheads(records, [f.sent.time for f in floors])
        floor = self._overheads(floors, [s.sent.time for s in sdk_floors])
        sdk = self._overheads(sdk_floors, [r.sent.time for r in records[1:]] + [end])
        size = max(1, turns // blocks)
        ratios = [
            percentile(ours["overheads"][k : k + size], 50)
            / percentile(floor["overheads"][k : k + size], 50)
            for k in range(0, turns - size + 1, size)
        ]
        overheads = ours.pop("overheads")
        floor_overheads = floor.pop("overheads")
        sdk_overheads = sdk.pop("overheads")
        quarter = max(1, turns // 4)
        return {
            **ours,
            "turns": turns,
            "red_cpu_ms_per_turn": cpu["ours"] * 1000 / turns,
            "floor_red_cpu_ms_per_turn": cpu["floor"] * 1000 / turns,
            "sdk_floor_red_cpu_ms_per_turn": cpu["sdk"] * 1000 / turns,
            "first_quarter_p50": percentile(overheads[:quarter], 50),
            "last_quarter_p50": percentile(overheads[-quarter:], 50),
            "floor": floor,
            "sdk_floor": sdk,
            "floor_overhead_p50": percentile(floor_overheads, 50),
            "ratio_p50": percentile(overheads, 50) / percentile(floor_overheads, 50),
            "sdk_ratio_p50": percentile(overheads, 50) / percentile(sdk_overheads, 50),
            "sdk_floor_to_floor_p50": (
                percentile(sdk_overheads, 50) / percentile(floor_overheads, 50)
            ),
            "block_ratios": ratios,
        }

    def _overheads(self, records: list[TurnRecord], ends: list[float]) -> dict[str, Any]:
        """Per-turn overhead figures of ``records``; ``ends[i]`` closes turn i's calls."""
        calls = self.discord.calls(since=records[0].sent.time)
        per_turn = [
            [c for c in calls if r.sent.time <= c.time < end] for r, end in zip(records, ends)
        ]
        inbound, outbound, total, overheads, sizes = [], [], [], [], []
        for record, turn_calls in zip(records, per_turn):
            llm = self.llm.timing_for(self.user_text(record))
            sizes.append(llm.messages)
            posts = [c for c in turn_calls if c.key == WEBHOOK_POST and c.time >= llm.finished]
            reply_call = posts[0].time if posts else record.reply.time
            inbound.append((llm.received - record.sent.time) * 1000)
            outbound.append((reply_call - llm.finished) * 1000)
            overheads.append(inbound[-1] + outbound[-1])
            total.append((record.reply.time - record.sent.time) * 1000)
        return {
            "overheads": overheads,
            "request_messages": (sizes[0], sizes[-1]),
            "overhead_p50": percentile(overheads, 50),
            "overhead_p99": percentile(overheads, 99),
            "overhead_max": max(overheads),
            "inbound_p50": percentile(inbound, 50),
            "outbound_p50": percentile(outbound, 50),
            "turn_p50": percentile(total, 50),
            "rest_calls": [len(c) for c in per_turn],
            "history_fetches": [sum(c.key == HISTORY_GET for c in tc) for tc in per_turn],
            "call_kinds": dict(Counter(c.key for tc in per_turn for c in tc)),
        }

    def latency_comparison(self, turns: int, latency: float = 0.05) -> dict[str, Any]:
        """Ours and the history-fetching baseline, alternating, on a Discord that adds
        ``latency`` to every REST call; zero-latency LLM. Both channels hold 50 earlier
        messages, so the baseline's history fetch returns a full page."""
        ours = self.channel("bench-lat", prefill=50)
        base = self._baseline_channel(f"{CHANNEL_PREFIX}-lat", prefill=50)
        self.discord.set_latency(latency)
        try:
            for i in range(2):  # ours: the first turn is cold
                self.turn(ours, f"warmup {i}")
                self.turn(base, f"warmup {i}")
                time.sleep(0.3)
            mine: list[TurnRecord] = []
            theirs: list[TurnRecord] = []
            for i in range(turns):
                mine.append(self.turn(ours, f"lat {i}"))
                time.sleep(0.25)  # the typing call and Config writes finish off the clock
                theirs.append(self.turn(base, f"lat {i}"))
                time.sleep(0.25)
            end = time.time()
        finally:
            self.discord.set_latency(0.0)
        size = max(1, turns // 4)
        ratios = []
        for k in range(0, turns - size + 1, size):  # consecutive blocks: the spread
            ours_ms = [(r.reply.time - r.sent.time) for r in mine[k : k + size]]
            base_ms = [(r.reply.time - r.sent.time) for r in theirs[k : k + size]]
            ratios.append(percentile(base_ms, 50) / percentile(ours_ms, 50))
        return {
            "latency_ms": latency * 1000,
            "ours": self._summary(mine, [t.sent.time for t in theirs]),
            "baseline": self._summary(theirs, [t.sent.time for t in mine[1:]] + [end]),
            "block_ratios": ratios,
        }

    def _baseline_channel(self, name: str, prefill: int) -> int:
        """A channel for the baseline cog: filled under another name, then renamed to
        ``name`` (the baseline answers only in channels named ``baseline*``)."""
        channel_id = self.channel("bench-prefill", bind=False, prefill=prefill)
        time.sleep(0.3)
        self.discord.run_sync(
            lambda: self.discord.state.update_channel(
                self.discord.state.channel(channel_id), name=name
            )
        )
        time.sleep(0.3)  # CHANNEL_UPDATE reaches Red before the first turn
        return channel_id

    def _summary(self, records: list[TurnRecord], ends: list[float]) -> dict[str, Any]:
        calls = self.discord.calls(since=records[0].sent.time)
        per_turn = [
            [c for c in calls if r.sent.time <= c.time < end] for r, end in zip(records, ends)
        ]
        times = [(r.reply.time - r.sent.time) * 1000 for r in records]
        return {
            "turns": len(records),
            "turn_p50": percentile(times, 50),
            "turn_p90": percentile(times, 90),
            "rest_calls": statistics.mean(len(c) for c in per_turn),
            "history_fetches": statistics.mean(
                sum(c.key == HISTORY_GET for c in calls) for calls in per_turn
            ),
            "call_kinds": dict(Counter(c.key for calls in per_turn for c in calls)),
        }

    def concurrency(
        self,
        sizes: tuple[int, ...],
        delay: float,
        bursts: int,
        mate: str = "maya",
        floor: bool = True,
    ) -> dict[str, dict[str, Any]]:
        """For each ``size``: that many channels bound to ``mate`` get a message at once,
        and (with ``floor``) as many floor channels and as many SDK floor channels
        (``floor_cog.py``); the LLM answers after ``delay``. Each round runs one burst of
        each, in an order that rotates round by round: a burst's garbage (what its turns
        left for the collector) weighs on the next one, so no kind always follows the
        same other. A first burst (zero latency) warms every channel: history fetch and
        webhook. The channels of a smaller size are the first of the largest size's.
        Results by size."""
        started = time.monotonic()
        most = max(sizes)
        ids = [self.channel(f"bench-{mate}-{i:03d}", mate=mate) for i in range(most)]
        kinds: dict[str, list[int]] = {"ours": ids}
        if floor:
            for kind, prefix in (("floor", FLOOR_PREFIX), ("sdk", SDK_FLOOR_PREFIX)):
                kinds[kind] = [self.channel(f"{prefix}-{i:03d}", bind=False) for i in range(most)]
        self.log(f"{most} channels bound to {mate} in {time.monotonic() - started:.1f}s")
        warm = self._burst(ids, "cold")
        for kind in kinds.keys() - {"ours"}:
            self._burst(kinds[kind], "cold")
        time.sleep(2.0)
        self.llm.delay = delay
        out: dict[str, dict[str, Any]] = {}
        order = list(kinds)
        try:
            for size in sizes:
                results: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
                for k in range(bursts):
                    for kind in order[k % len(order) :] + order[: k % len(order)]:
                        results[kind].append(self._burst(kinds[kind][:size], f"{kind}{size}-{k}"))
                        time.sleep(2.0)  # let the previous burst's Config writes settle
                out[str(size)] = self._bursts_summary(mate, size, delay, results)
                out[str(size)]["cold_span_s"] = warm["span_s"]
        finally:
            self.llm.delay = 0.0
        return out

    @staticmethod
    def _bursts_summary(
        mate: str, size: int, delay: float, results: dict[str, list[dict[str, float]]]
    ) -> dict[str, Any]:
        ours = results["ours"]
        spans = [r["span_s"] for r in ours]
        summary: dict[str, Any] = {
            "mate": mate,
            "channels": size,
            "delay_s": delay,
            "spans_s": spans,
            "ratio": statistics.median(spans) / delay,
            "ratios": [s / delay for s in spans],
            "turn_p50_s": statistics.median(r["turn_p50_s"] for r in ours),
            "llm_received_spread_s": statistics.median(r["llm_spread_s"] for r in ours),
            "red_cpu_s_per_burst": statistics.median(r["red_cpu_s"] for r in ours),
            "gc_s_per_burst": statistics.median(r["gc_s"] for r in ours),
            "full_collections_per_burst": statistics.median(r["full_collections"] for r in ours),
        }
        for kind, key in (("floor", "floor"), ("sdk", "sdk_floor")):
            if kind not in results:
                continue
            theirs = results[kind]
            their_spans = [r["span_s"] for r in theirs]
            summary.update(
                {
                    f"{key}_spans_s": their_spans,
                    f"{key}_red_cpu_s_per_burst": statistics.median(r["red_cpu_s"] for r in theirs),
                    f"{key}_gc_s_per_burst": statistics.median(r["gc_s"] for r in theirs),
                    f"{key}_full_collections_per_burst": statistics.median(
                        r["full_collections"] for r in theirs
                    ),
                    f"{key}_llm_received_spread_s": statistics.median(
                        r["llm_spread_s"] for r in theirs
                    ),
                    f"to_{key}": statistics.median(spans) / statistics.median(their_spans),
                    f"{key}_pair_ratios": [a / b for a, b in zip(spans, their_spans)],
                }
            )
        if "floor" in results:
            summary["pair_ratios"] = summary.pop("floor_pair_ratios")
            summary["sdk_floor_to_floor"] = statistics.median(
                summary["sdk_floor_spans_s"]
            ) / statistics.median(summary["floor_spans_s"])
        return summary

    def _burst(self, channel_ids: list[int], tag: str) -> dict[str, float]:
        posts = [(cid, f"{tag} {cid} {self.nonce}") for cid in channel_ids]
        gc_before, full_before = self.gc_pauses()
        cpu = self.red_cpu()
        sent_ids = self.discord.post_many(self.member, posts)
        sent_of = dict(zip(channel_ids, sent_ids))
        replies = self.discord.wait_created(
            lambda c: c.webhook and c.message_id > sent_of.get(c.channel_id, 1 << 62),
            count=len(channel_ids),
            timeout=120,
        )
        cpu = self.red_cpu() - cpu
        gc_after, full_after = self.gc_pauses()
        firsts: dict[int, Created] = {}
        for reply in replies:
            firsts.setdefault(reply.channel_id, reply)
        sent = {cid: self.discord.created_by_id(mid) for cid, mid in sent_of.items()}
        start = min(s.time for s in sent.values())
        received = []
        for _cid, text in posts:
            try:
                received.append(self.llm.timing_for(f"{self.member_name}: {text}").received)
            except KeyError:
                pass
        turn_times = [firsts[cid].time - sent[cid].time for cid in firsts]
        return {
            "span_s": max(r.time for r in firsts.values()) - start,
            "turn_p50_s": statistics.median(turn_times),
            "llm_spread_s": (max(received) - start) if received else float("nan"),
            "red_cpu_s": cpu,
            "gc_s": gc_after - gc_before,
            "full_collections": full_after - full_before,
        }


def run_red_scenarios(
    root: Path, quick: bool, log: Callable[[str], None], only: Optional[set[str]] = None
) -> dict[str, Any]:
    """All Red-driven scenarios; the raw results by name."""
    bench = RedBench(root, log)
    results: dict[str, Any] = {}
    try:
        bench.start()
        if not only or "overhead" in only:
            # The metric is defined on 200 turns; the floor's turns alternate with ours.
            results["overhead"] = bench.turn_overhead(200)
            log("turn overhead (and the floor's) done")
        if not only or "latency" in only:
            results["latency"] = bench.latency_comparison(15 if quick else 40)
            log("50 ms Discord comparison done")
        if not only or "concurrency" in only:
            # A single burst varies by +-0.15 s on this machine: medians of several,
            # ours and the floor's alternating.
            bursts = 3 if quick else 5
            by_size = bench.concurrency((100, 500), 1.0, bursts, "maya")
            results["concurrency"] = by_size["100"]
            results["concurrency_500"] = by_size["500"]
            log("concurrency (maya, OpenAI, and the floor) done")
            # The Anthropic figure is an extra, not a target: one size, no floor.
            anthropic = bench.concurrency((100,), 1.0, 1 if quick else 3, "merlin", floor=False)
            results["concurrency_anthropic"] = anthropic["100"]
            log("concurrency (merlin, Anthropic) done")
        if not only or "coldstart" in only:
            results["coldstart"] = cold_start(bench, 1 if quick else 2, log)
            log("cold start, 1 and 1,000 servers, done")
    except BaseException:
        log("Red log tail:\n" + bench.red.log_tail(40))
        raise
    finally:
        bench.close()
    return results
