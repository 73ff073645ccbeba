"""loopflow mates benchmark: a real Red process with the cog, a fake Discord, a fake LLM.

    .venv/bin/python bench/run.py            # full run
    .venv/bin/python bench/run.py --quick    # under about 3 minutes
    .venv/bin/python bench/run.py --json     # the table, then one JSON line

Targets are ratios measured side by side in one run, mostly against the **floor**
(``floor_cog.py``: one raw HTTP call to the LLM and one webhook post, in the same Red
process), so that they hold on any machine; absolute times are reported beside them.

Run it with the Python that has Red and the project installed (``pip install -e '.[dev]'``).
Everything stays on 127.0.0.1. Scenarios (see BENCHMARKS.md for what each measures):

- turn overhead: zero-latency LLM and Discord; per turn, (message dispatched -> LLM
  request received) + (LLM response finished -> reply's REST call received);
- 50 ms Discord: every REST call answers 50 ms late; message dispatched -> reply posted,
  for loopflow and for a baseline cog that fetches the channel history on every turn;
- concurrency: 100 bound channels get a message at once, the LLM answers after 1.0 s
  (maya on OpenAI, the target; then merlin on Anthropic);
- cold start: Red ready -> first reply with mates in 1 server and in 1,000;
- context build and memory: in-process against ``Session`` and ``ConversationCache``;
- cost (``cost.py``), memory (``memory.py``), store flush (``flush_ratio.py``): in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from red_bench import run_red_scenarios  # noqa: E402

TARGETS: dict[str, tuple[str, float]] = {
    # Ratios, side by side in one run (issue 18's table).
    "overhead_to_floor_p50": ("<=", 1.5),
    "burst_100_to_floor": ("<=", 1.2),
    "burst_500_to_floor": ("<=", 1.3),
    "baseline_to_ours_turn_ratio": (">=", 2.4),
    "cold_start_ratio_1000_to_1_guilds": ("<=", 3),
    "flush_ratio_1000_to_1_guilds": ("<=", 2),
    "rss_mb_10000_conversations": ("<=", 1200),
    # Today's other figures, which hold.
    "rest_calls_per_warm_turn": ("<=", 2),
    "history_fetches_per_warm_turn": ("<=", 0),
    "context_build_ratio_10k_to_100": ("<=", 2),
    "rss_mb_1000_conversations": ("<=", 150),
    # Cost (issue 15) and memory (issue 14).
    "billed_input_ratio_300_turns_anthropic": ("<=", 0.35),
    "billed_input_ratio_300_turns_openai": ("<=", 0.35),
    "limit_check_us": ("<=", 50),
    "prefix_stable_share": (">=", 0.8),
    "memory_extra_to_overhead_p50": ("<=", 0.1),
}
ALL = (
    "overhead",
    "latency",
    "concurrency",
    "coldstart",
    "context",
    "rss",
    "rss10k",
    "cost",
    "memory",
    "flush",
)
RED_PARTS = {"overhead", "latency", "concurrency", "coldstart"}
LIBRARIES = ("openai", "anthropic", "pydantic", "httpx", "httpcore", "aiohttp", "discord.py")


def log(text: str) -> None:
    """Progress on stderr, so stdout holds only the table and the JSON."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    import redbot

    libraries = {}
    for name in LIBRARIES:
        try:
            libraries[name] = version(name)
        except PackageNotFoundError:
            libraries[name] = "absent"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "red": redbot.__version__,
        "libraries": libraries,
        "load_before": os.getloadavg(),
    }


def in_process(what: str, quick: bool) -> dict[str, Any]:
    """Run ``inprocess.py what`` in a fresh interpreter; its JSON."""
    return script(["inprocess.py", what] + (["--quick"] if quick else []))


def script(args: list[str], timeout: float = 600) -> dict[str, Any]:
    """Run ``bench/<args[0]> args[1:]`` in a fresh interpreter; its last line's JSON."""
    return finish(start(args), timeout)


def start(args: list[str]) -> subprocess.Popen[str]:
    """Start ``bench/<args[0]> args[1:]`` in a fresh interpreter (see :func:`finish`)."""
    cmd = [sys.executable, str(HERE / args[0]), *args[1:]]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 600) -> dict[str, Any]:
    """Wait for a :func:`start`-ed script; its last line's JSON. Raises
    ``subprocess.TimeoutExpired`` (the script is killed) or ``RuntimeError``."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, proc.args))} failed:\n{err}")  # type: ignore[arg-type]
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def flush(quick: bool) -> dict[str, Any]:
    """``flush_ratio.py`` (which calls the store's ``store_flush.py``) within a time limit;
    ``{"not_measured": why}`` when it cannot give a figure."""
    limit = 120 if quick else 240  # filling 1,000 servers' indexes takes about 40 s
    try:
        return script(["flush_ratio.py"], timeout=limit)
    except subprocess.TimeoutExpired:
        return {"not_measured": f"store_flush.py with 1,000 servers took over {limit} s"}
    except (RuntimeError, ValueError, IndexError) as exc:
        return {"not_measured": str(exc)[-300:]}


def spread(values: list[float]) -> str:
    """``median (min-max, n=N)`` of ``values``."""
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f}, n={len(values)})"


def _floor_line(c: dict[str, Any], key: str, label: str) -> str:
    """The start of a burst's line for one floor (``key``: ``floor`` or ``sdk_floor``):
    its spans, CPU, garbage collection and request spread."""
    spans = ", ".join(f"{s:.2f}" for s in c[f"{key}_spans_s"])
    return (
        f"  {label}: {spans} s (Red CPU {c[f'{key}_red_cpu_s_per_burst']:.2f} s per burst, "
        f"garbage collection {c[f'{key}_gc_s_per_burst']:.2f} s, "
        f"{c[f'{key}_full_collections_per_burst']:g} full; last LLM request "
        f"{c[f'{key}_llm_received_spread_s']:.2f} s after the first message); "
    )


def figures(raw: dict[str, Any]) -> dict[str, float]:
    """The JSON keys, from the raw scenario results."""
    out: dict[str, float] = {}
    if "overhead" in raw:
        o = raw["overhead"]
        out["overhead_to_floor_p50"] = o["ratio_p50"]
        out["turn_overhead_ms_p50"] = o["overhead_p50"]
        out["turn_overhead_ms_p99"] = o["overhead_p99"]
        out["floor_overhead_ms_p50"] = o["floor_overhead_p50"]
        out["overhead_to_sdk_floor_p50"] = o["sdk_ratio_p50"]
        out["sdk_floor_to_floor_p50"] = o["sdk_floor_to_floor_p50"]
        out["rest_calls_per_warm_turn"] = sum(o["rest_calls"]) / len(o["rest_calls"])
    for key, name in (
        ("concurrency", "burst_100_to_floor"),
        ("concurrency_500", "burst_500_to_floor"),
    ):
        if key in raw:
            c = raw[key]
            out[name] = c["to_floor"]
            out[f"concurrent_{c['channels']}_ratio"] = c["ratio"]
            out[f"floor_concurrent_{c['channels']}_ratio"] = (
                statistics.median(c["floor_spans_s"]) / c["delay_s"]
            )
            out[f"burst_{c['channels']}_to_sdk_floor"] = c["to_sdk_floor"]
            out[f"burst_{c['channels']}_sdk_floor_to_floor"] = c["sdk_floor_to_floor"]
    if "concurrency_anthropic" in raw:
        out["concurrent_100_ratio_anthropic"] = raw["concurrency_anthropic"]["ratio"]
    if "latency" in raw:
        ours, base = raw["latency"]["ours"], raw["latency"]["baseline"]
        out["baseline_to_ours_turn_ratio"] = base["turn_p50"] / ours["turn_p50"]
        out["turn_ms_at_50ms_discord_p50"] = ours["turn_p50"]
        out["baseline_turn_ms_at_50ms_discord_p50"] = base["turn_p50"]
        out["rest_calls_per_warm_turn_at_50ms"] = ours["rest_calls"]
        out["baseline_rest_calls_per_turn"] = base["rest_calls"]
        out["baseline_to_ours_rest_calls_ratio"] = base["rest_calls"] / ours["rest_calls"]
    fetches = []
    if "overhead" in raw:
        fetches += raw["overhead"]["history_fetches"]
    if "latency" in raw:
        fetches.append(raw["latency"]["ours"]["history_fetches"])
    if fetches:
        out["history_fetches_per_warm_turn"] = sum(fetches) / len(fetches)
    if "coldstart" in raw:
        c = raw["coldstart"]
        out["cold_start_ratio_1000_to_1_guilds"] = c["ratio"]
        out["cold_start_s_1_guild"] = statistics.median(c["1"]["ready_to_reply_s"])
        out["cold_start_s_1000_guilds"] = statistics.median(c["1000"]["ready_to_reply_s"])
        out["start_to_reply_ratio_1000_to_1_guilds"] = c["start_ratio"]
    if "flush" in raw and "ratio" in raw["flush"]:
        out["flush_ratio_1000_to_1_guilds"] = raw["flush"]["ratio"]
    if "context" in raw:
        c = raw["context"]
        out["context_build_ms_10k"] = c["default_10000"]["p50_ms"]
        out["context_build_ratio_10k_to_100"] = c["full_10000"]["p50_ms"] / c["full_100"]["p50_ms"]
        out["context_build_ratio_10k_to_100_chat"] = (
            c["default_10000"]["p50_ms"] / c["default_100"]["p50_ms"]
        )
    if "rss" in raw:
        out["rss_mb_1000_conversations"] = raw["rss"]["rss_growth_mb"]
    if "rss10k" in raw:
        out["rss_mb_10000_conversations"] = raw["rss10k"]["rss_growth_mb"]
    if "cost" in raw:
        for key, value in raw["cost"].items():
            if isinstance(value, (int, float)):
                out[key] = value
    if "memory" in raw:
        m = raw["memory"]
        for key in ("prefix_stable_share", "cache_stable_share", "fold_requests_per_100_turns"):
            out[key] = m[key]
        out["memory_build_p50_ms"] = m["build_p50_ms_memory"]
        out["sliding_build_p50_ms"] = m["build_p50_ms_sliding"]
        out["memory_keeper_p50_ms"] = m["keeper_p50_ms"]
        if "overhead" in raw:
            extra = max(0.0, m["keeper_p50_ms"] - m["build_p50_ms_sliding"])
            out["memory_extra_to_overhead_p50"] = extra / raw["overhead"]["overhead_p50"]
    return {k: round(v, 3) for k, v in out.items()}


def holds(value: float, op: str, target: float) -> bool:
    """Whether ``value`` meets ``op target``."""
    return value <= target if op == "<=" else value >= target


def table(info: dict[str, Any], raw: dict[str, Any], out: dict[str, float], quick: bool) -> str:
    """The readable report."""
    rows = [("figure", "value", "target", "")]
    for key, (op, target) in TARGETS.items():
        if key in out:
            value = out[key]
            ok = "ok" if holds(value, op, target) else "MISS"
            rows.append((key, f"{value:g}", f"{op} {target:g}", ok))
        elif key == "flush_ratio_1000_to_1_guilds" and "flush" in raw:
            rows.append((key, "not measured", f"{op} {target:g}", ""))
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    libraries = ", ".join(f"{k} {v}" for k, v in info["libraries"].items())
    before, after = info["load_before"], info.get("load_after", (0.0, 0.0, 0.0))
    lines = [
        f"loopflow mates benchmark ({'quick' if quick else 'full'} run)",
        f"{info['cpu']}, {info['cores']} cores, Python {info['python']}, Red {info['red']}",
        f"libraries: {libraries}",
        f"load average (1/5/15 min) {before[0]:.2f}/{before[1]:.2f}/{before[2]:.2f} before, "
        f"{after[0]:.2f}/{after[1]:.2f}/{after[2]:.2f} after",
        "",
    ]
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in width))
    lines += ["", *details(raw, out)]
    return "\n".join(lines)


def details(raw: dict[str, Any], out: dict[str, float]) -> list[str]:
    """The figures behind the figures (absolute times included)."""
    lines = []
    if "overhead" in raw:
        o = raw["overhead"]
        first, last = o["request_messages"]
        f, sdk = o["floor"], o["sdk_floor"]
        lines += [
            f"turn overhead ({o['turns']} warm turns each, zero latency, ours, the floor's and "
            f"the SDK floor's alternating): ours p50 {o['overhead_p50']:.2f} ms = dispatch->LLM "
            f"{o['inbound_p50']:.2f} + LLM done->reply call {o['outbound_p50']:.2f}; p99 "
            f"{o['overhead_p99']:.1f}; max {o['overhead_max']:.1f} ms; whole turn p50 "
            f"{o['turn_p50']:.2f} ms",
            f"  the floor: p50 {f['overhead_p50']:.2f} ms = {f['inbound_p50']:.2f} + "
            f"{f['outbound_p50']:.2f}; p99 {f['overhead_p99']:.1f} ms",
            f"  the floor through the openai SDK: p50 {sdk['overhead_p50']:.2f} ms = "
            f"{sdk['inbound_p50']:.2f} + {sdk['outbound_p50']:.2f}; it / the floor "
            f"{o['sdk_floor_to_floor_p50']:.2f}; ours / it {o['sdk_ratio_p50']:.2f}",
            f"  ours / floor p50 {o['ratio_p50']:.2f}; by block of "
            f"{o['turns'] // len(o['block_ratios'])} turns: {spread(o['block_ratios'])}",
            f"  the request grows from {first} to {last} messages: overhead p50 "
            f"{o['first_quarter_p50']:.2f} ms in the first quarter of the turns, "
            f"{o['last_quarter_p50']:.2f} ms in the last; Red CPU per turn "
            f"{o['red_cpu_ms_per_turn']:.1f} ms ours, {o['floor_red_cpu_ms_per_turn']:.1f} ms "
            f"the floor's, {o['sdk_floor_red_cpu_ms_per_turn']:.1f} ms the SDK floor's",
            f"  REST calls in our turns: {o['call_kinds']}",
        ]
    if "latency" in raw:
        lat = raw["latency"]
        ours, base = lat["ours"], lat["baseline"]
        lines += [
            f"Discord adds {lat['latency_ms']:g} ms per REST call ({ours['turns']} turns each, "
            "alternating; message dispatched -> reply posted):",
            f"  loopflow (warm cache):      p50 {ours['turn_p50']:6.1f} ms  p90 "
            f"{ours['turn_p90']:6.1f} ms  {ours['rest_calls']:.2f} REST calls/turn "
            f"({ours['history_fetches']:.2f} history fetches)  {ours['call_kinds']}",
            f"  baseline (history per turn): p50 {base['turn_p50']:6.1f} ms  p90 "
            f"{base['turn_p90']:6.1f} ms  {base['rest_calls']:.2f} REST calls/turn "
            f"({base['history_fetches']:.2f} history fetches)  {base['call_kinds']}",
            f"  baseline / loopflow: turn time x{out['baseline_to_ours_turn_ratio']:.2f} "
            f"(by block: {spread(lat['block_ratios'])}), "
            f"REST calls x{out['baseline_to_ours_rest_calls_ratio']:.2f}",
        ]
    for key, provider in (
        ("concurrency", "OpenAI"),
        ("concurrency_500", "OpenAI"),
        ("concurrency_anthropic", "Anthropic"),
    ):
        if key not in raw:
            continue
        c = raw[key]
        spans = ", ".join(f"{s:.2f}" for s in c["spans_s"])
        lines.append(
            f"burst, {c['mate']} ({provider}): {c['channels']} channels at once, LLM "
            f"latency {c['delay_s']:g} s: all replies posted after {spans} s (median ratio "
            f"{c['ratio']:.2f}); one turn p50 {c['turn_p50_s']:.2f} s; last LLM request "
            f"{c['llm_received_spread_s']:.2f} s after the first message; Red CPU "
            f"{c['red_cpu_s_per_burst']:.2f} s per burst, of it garbage collection "
            f"{c['gc_s_per_burst']:.2f} s ({c['full_collections_per_burst']:g} full); cold "
            f"burst (zero latency, history "
            f"fetch + webhook per channel) {c['cold_span_s']:.2f} s"
        )
        if "floor_spans_s" in c:
            lines.append(
                _floor_line(c, "floor", "the floor, alternating")
                + f"ours / floor {c['to_floor']:.2f}, pair by pair {spread(c['pair_ratios'])}"
            )
        if "sdk_floor_spans_s" in c:
            lines.append(
                _floor_line(c, "sdk_floor", "the floor through the openai SDK")
                + f"it / the floor {c['sdk_floor_to_floor']:.2f}; ours / it "
                f"{c['to_sdk_floor']:.2f}, pair by pair {spread(c['sdk_floor_pair_ratios'])}"
            )
    if "coldstart" in raw:
        c = raw["coldstart"]
        for servers in ("1", "1000"):
            ready = ", ".join(f"{v:.2f}" for v in c[servers]["ready_to_reply_s"])
            start = ", ".join(f"{v:.2f}" for v in c[servers]["start_to_reply_s"])
            lines.append(
                f"cold start, mates in {servers} server(s): Red ready -> first reply {ready} s; "
                f"process start -> first reply {start} s"
            )
        lines.append(f"  ({c['seeded']}; after the restarts the store reads {c['check']!r})")
    if "flush" in raw:
        f = raw["flush"]
        if "ratio" in f:
            lines.append(
                f"store flush, one server changed (JSON driver): {f['flush_ms_1_guild']:.1f} ms "
                f"with 1 server, {f['flush_ms_1000_guilds']:.1f} ms with 1,000 "
                f"(file {f['file_mb_1000_guilds']:.1f} MB)"
            )
        else:
            lines.append(f"store flush: not measured: {f['not_measured']}")
    if "context" in raw:
        c = raw["context"]
        for key, label in (("default", "~200-char messages"), ("full", "~800-char messages")):
            small, big = c[f"{key}_100"], c[f"{key}_10000"]
            lines.append(
                f"context build, {label}: 100 cached -> {small['p50_ms']:.3f} ms "
                f"({small['sent']} sent), 10,000 cached -> {big['p50_ms']:.3f} ms "
                f"({big['sent']} sent; cold {big['cold_ms']:.1f} ms), "
                f"ratio {big['p50_ms'] / small['p50_ms']:.2f}"
            )
        b = c["breakdown_10000"]
        lines.append(
            f"  10,000 cached, per step: cache.turns {b['cache_turns_ms']:.3f} ms, "
            f"lived_order {b['lived_order_ms']:.3f} ms, Session.build "
            f"{b['session_build_ms']:.3f} ms"
        )
    for key in ("rss", "rss10k"):
        if key in raw:
            r = raw[key]
            lines.append(
                f"memory: {r['conversations']:,} conversations x {r['messages']} messages, "
                f"each loaded and answered once ({r['cached_conversations']:,} kept by the "
                f"cache's default bounds): RSS +{r['rss_growth_mb']:.1f} MiB (took "
                f"{r['builds_s']:.1f} s)"
            )
    if "cost" in raw:
        lines += cost_lines(raw["cost"])
    if "memory" in raw:
        m = raw["memory"]
        lines.append(
            f"memory (issue 14), {m['turns']} turns, {m['budget']:,}-token budget: prefix "
            f"stable {m['prefix_stable_share']:.2f} (with the system prompt too "
            f"{m['cache_stable_share']:.2f}; sliding window "
            f"{m['sliding_prefix_stable_share']:.2f}); "
            f"{m['fold_requests_per_100_turns']:g} folds per 100 turns; per turn p50: build "
            f"{m['build_p50_ms_sliding']:.3f} ms sliding, {m['build_p50_ms_memory']:.3f} ms "
            f"with memory, {m['keeper_p50_ms']:.3f} ms with the keeper's part"
        )
    return lines


def cost_lines(c: dict[str, Any]) -> list[str]:
    """The cost section's details."""
    lines = [
        f"limit check (issue 15): {c['limit_check_us']:.2f} us per turn "
        f"({c['details']['limit_check']})"
    ]
    for label, d in c["details"].items():
        if label == "limit_check":
            continue
        lines.append(
            f"billed input, {label} ({d['model']}): ratio {d['ratio']:.3f} = "
            f"${d['ours_usd']:.3f} ours (replies ${d['replies_usd']:.3f} + {d['folds']} folds "
            f"${d['folds_usd']:.3f}) / ${d['baseline_usd']:.3f} sliding uncached; input tokens "
            f"{d['ours_input_tokens']:,} vs {d['baseline_input_tokens']:,}; cached "
            f"{d['cached_share']:.0%}, written {d['written_share']:.0%}; {d['jumps']} jumps; "
            f"with the folds' output too {d['ratio_with_fold_output']:.3f}; if fold requests "
            f"carried no cache breakpoint {d['ratio_if_folds_unmarked']:.3f}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 (targets are reported, not enforced)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer turns: under ~3 minutes")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--keep", action="store_true", help="keep Red's temporary directory")
    args = parser.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()} or set(ALL)
    if only - set(ALL):
        parser.error(f"unknown scenario(s): {', '.join(sorted(only - set(ALL)))}")
    started = time.monotonic()
    info = machine()
    raw: dict[str, Any] = {}
    # Memory figures time nothing: a quick run measures them beside the in-process
    # timings (all before Red starts, so that Red's timings run alone).
    beside = {
        what: start(["inprocess.py", what])
        for what in ("rss", "rss10k")
        if what in only and args.quick
    }
    for what in ("context", "rss", "rss10k"):
        if what in only and what not in beside:
            raw[what] = in_process(what, args.quick)
            log(f"{what} done")
    if "cost" in only:
        raw["cost"] = script(["cost.py"] + (["--quick"] if args.quick else []))
        log("cost done")
    if "memory" in only:
        raw["memory"] = script(["memory.py", "--rounds", "3" if args.quick else "5"])
        log("memory done")
    if "flush" in only:
        raw["flush"] = flush(args.quick)
        log("store flush done")
    for what, proc in beside.items():
        raw[what] = finish(proc)
        log(f"{what} done")
    red_parts = only & RED_PARTS
    if red_parts:
        root = Path(tempfile.mkdtemp(prefix="loopflow-bench-"))
        try:
            raw.update(run_red_scenarios(root, args.quick, log, red_parts))
        finally:
            if args.keep:
                log(f"kept {root}")
            else:
                shutil.rmtree(root, ignore_errors=True)
    info["load_after"] = os.getloadavg()
    out = figures(raw)
    print(table(info, raw, out, args.quick))
    log(f"finished in {time.monotonic() - started:.0f}s")
    if args.json:
        extra: dict[str, Any] = {"libraries": info["libraries"], "load": info["load_after"]}
        if "flush" in raw and "ratio" not in raw["flush"]:
            extra["not_measured"] = {"flush_ratio_1000_to_1_guilds": raw["flush"]["not_measured"]}
        print(json.dumps({**out, **extra}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
