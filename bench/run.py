"""loopflow mates benchmark: a real Red process with the cog, a fake Discord, a fake LLM.

    .venv/bin/python bench/run.py            # full run (about 2 minutes)
    .venv/bin/python bench/run.py --quick    # about 1 minute (under 2)
    .venv/bin/python bench/run.py --json     # the table, then one JSON line

Run it with the Python that has Red and the project installed (``pip install -e '.[dev]'``).
Everything stays on 127.0.0.1. Scenarios (see BENCHMARKS.md for what each measures):

- turn overhead: zero-latency LLM and Discord; per turn, (message dispatched -> LLM
  request received) + (LLM response finished -> reply's REST call received);
- 50 ms Discord: every REST call answers 50 ms late; message dispatched -> reply posted,
  for loopflow and for a baseline cog that fetches the channel history on every turn;
- concurrency: 100 bound channels get a message at once, the LLM answers after 1.0 s
  (maya on OpenAI, the target; then merlin on Anthropic);
- context build and memory: in-process against ``Session`` and ``ConversationCache``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
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
    "turn_overhead_ms_p50": ("<=", 15),
    "turn_overhead_ms_p99": ("<=", 50),
    "concurrent_100_ratio": ("<=", 1.5),
    "turn_ms_at_50ms_discord_p50": ("<=", 70),
    "rest_calls_per_warm_turn": ("<=", 2),
    "history_fetches_per_warm_turn": ("<=", 0),
    "context_build_ms_10k": ("<=", 5),
    "context_build_ratio_10k_to_100": ("<=", 2),
    "rss_mb_1000_conversations": ("<=", 150),
}
ALL = ("overhead", "latency", "concurrency", "context", "rss")


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
    import discord
    import redbot

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "red": redbot.__version__,
        "discord.py": discord.__version__,
        "load_before": os.getloadavg()[0],
    }


def in_process(what: str, quick: bool) -> dict[str, Any]:
    """Run ``inprocess.py what`` in a fresh interpreter; its JSON."""
    cmd = [sys.executable, str(HERE / "inprocess.py"), what] + (["--quick"] if quick else [])
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def figures(raw: dict[str, Any]) -> dict[str, float]:
    """The JSON keys, from the raw scenario results."""
    out: dict[str, float] = {}
    if "overhead" in raw:
        o = raw["overhead"]
        out["turn_overhead_ms_p50"] = o["overhead_p50"]
        out["turn_overhead_ms_p99"] = o["overhead_p99"]
        out["rest_calls_per_warm_turn"] = sum(o["rest_calls"]) / len(o["rest_calls"])
    if "concurrency" in raw:
        out["concurrent_100_ratio"] = raw["concurrency"]["ratio"]
    if "concurrency_anthropic" in raw:
        out["concurrent_100_ratio_anthropic"] = raw["concurrency_anthropic"]["ratio"]
    if "latency" in raw:
        ours, base = raw["latency"]["ours"], raw["latency"]["baseline"]
        out["turn_ms_at_50ms_discord_p50"] = ours["turn_p50"]
        out["baseline_turn_ms_at_50ms_discord_p50"] = base["turn_p50"]
        out["baseline_to_ours_turn_ratio"] = base["turn_p50"] / ours["turn_p50"]
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
    if "context" in raw:
        c = raw["context"]
        out["context_build_ms_10k"] = c["default_10000"]["p50_ms"]
        out["context_build_ratio_10k_to_100"] = c["full_10000"]["p50_ms"] / c["full_100"]["p50_ms"]
        out["context_build_ratio_10k_to_100_chat"] = (
            c["default_10000"]["p50_ms"] / c["default_100"]["p50_ms"]
        )
    if "rss" in raw:
        out["rss_mb_1000_conversations"] = raw["rss"]["rss_growth_mb"]
    return {k: round(v, 3) for k, v in out.items()}


def table(info: dict[str, Any], raw: dict[str, Any], out: dict[str, float], quick: bool) -> str:
    """The readable report."""
    rows = [("figure", "value", "target", "")]
    for key, value in out.items():
        if key in TARGETS:
            op, target = TARGETS[key]
            ok = value <= target
            rows.append((key, f"{value:g}", f"{op} {target:g}", "ok" if ok else "MISS"))
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        f"loopflow mates benchmark ({'quick' if quick else 'full'} run)",
        f"{info['cpu']}, {info['cores']} cores, Python {info['python']}, Red {info['red']}, "
        f"discord.py {info['discord.py']}; load average {info['load_before']:.2f} before, "
        f"{info.get('load_after', 0):.2f} after",
        "",
    ]
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in width))
    lines += ["", *details(raw, out)]
    return "\n".join(lines)


def details(raw: dict[str, Any], out: dict[str, float]) -> list[str]:
    """The figures behind the figures."""
    lines = []
    if "overhead" in raw:
        o = raw["overhead"]
        first, last = o["request_messages"]
        lines += [
            f"turn overhead ({o['turns']} warm turns, zero latency): p50 {o['overhead_p50']:.2f} ms"
            f" = dispatch->LLM {o['inbound_p50']:.2f} + LLM done->reply call "
            f"{o['outbound_p50']:.2f}; max {o['overhead_max']:.1f} ms; whole turn p50 "
            f"{o['turn_p50']:.2f} ms",
            f"  the request grows from {first} to {last} messages: overhead p50 "
            f"{o['first_quarter_p50']:.2f} ms in the first quarter of the turns, "
            f"{o['last_quarter_p50']:.2f} ms in the last; Red CPU "
            f"{o['red_cpu_ms_per_turn']:.1f} ms per turn",
            f"  REST calls in those turns: {o['call_kinds']}",
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
            f"  baseline / loopflow: turn time x{out['baseline_to_ours_turn_ratio']:.2f}, "
            f"REST calls x{out['baseline_to_ours_rest_calls_ratio']:.2f}",
        ]
    for key, provider in (("concurrency", "OpenAI"), ("concurrency_anthropic", "Anthropic")):
        if key not in raw:
            continue
        c = raw[key]
        spans = ", ".join(f"{s:.2f}" for s in c["spans_s"])
        lines += [
            f"concurrency, {c['mate']} ({provider}): {c['channels']} channels at once, LLM "
            f"latency {c['delay_s']:g} s: all replies posted after {spans} s (median ratio "
            f"{c['ratio']:.2f}); one turn p50 {c['turn_p50_s']:.2f} s; last LLM request "
            f"{c['llm_received_spread_s']:.2f} s after the first message; Red CPU "
            f"{c['red_cpu_s_per_burst']:.2f} s per burst; cold burst (zero latency, history "
            f"fetch + webhook per channel) {c['cold_span_s']:.2f} s",
        ]
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
    if "rss" in raw:
        r = raw["rss"]
        lines.append(
            f"memory: {r['conversations']} conversations x {r['messages']} messages: "
            f"cache {r['cache_mb']:.1f} MiB, with one request built for each "
            f"{r['rss_growth_mb']:.1f} MiB (builds took {r['builds_s']:.1f} s)"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 (targets are reported, not enforced)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer turns: under 2 minutes")
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
    for what in ("context", "rss"):
        if what in only:
            raw[what] = in_process(what, args.quick)
            log(f"{what} done")
    red_parts = only & {"overhead", "latency", "concurrency"}
    if red_parts:
        root = Path(tempfile.mkdtemp(prefix="loopflow-bench-"))
        try:
            raw.update(run_red_scenarios(root, args.quick, log, red_parts))
        finally:
            if args.keep:
                log(f"kept {root}")
            else:
                shutil.rmtree(root, ignore_errors=True)
    info["load_after"] = os.getloadavg()[0]
    out = figures(raw)
    print(table(info, raw, out, args.quick))
    log(f"finished in {time.monotonic() - started:.0f}s")
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
