"""The terminal CLI: ``loopflow mates`` and ``loopflow chat``.

``loopflow chat maya`` reads lines from stdin (typed or piped) and prints each reply
as it streams, through the same :class:`~loopflow.chat.bot.MateBot` and session layer
the Discord cog uses (a :class:`TerminalSink` prints what the bot writes), with the same
memory (PRODUCT.md section 10), kept in memory until the chat ends: a window that moves
in steps and a running summary folded beside the turns. Providers come from the
environment the SDKs read: ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` and
``ANTHROPIC_API_KEY`` / ``ANTHROPIC_BASE_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import itertools
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

from loopflow import __version__
from loopflow.chat.bot import MateBot
from loopflow.chat.keeper import InMemoryStore, MemoryKeeper
from loopflow.chat.sink import Outcome
from loopflow.chat.streaming import LIVE
from loopflow.errors import LoopflowError, MissingKeyError
from loopflow.io.session import ReplyStream, Session, Turn
from loopflow.mates import Mate, builtin_mates, load_mate_file, resolve_mate
from loopflow.models import PROVIDER_NAMES, key_is_set, provider_spec
from loopflow.providers import Provider, make_provider

EXIT_FAILURE = 1
EXIT_USAGE = 2
_CONVERSATION = 0  # the terminal holds one conversation (and no server: guild 0)
_YOU, _MATE = 1, 0  # speaker ids


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except LoopflowError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loopflow", description="Chat with loopflow mates in the terminal."
    )
    parser.add_argument("--version", action="version", version=f"loopflow {__version__}")
    commands = parser.add_subparsers(title="commands")

    mates = commands.add_parser("mates", help="list the built-in mates and any mate files given")
    mates.add_argument("files", nargs="*", metavar="FILE.md", help="loopflow mate files")
    mates.set_defaults(run=_list_mates)

    chat = commands.add_parser("chat", help="chat with a mate; reads lines from stdin")
    chat.add_argument("mate", metavar="NAME|FILE.md", help="a built-in mate or a mate file")
    chat.add_argument("--model", help="use this model instead of the mate's")
    chat.add_argument("--name", help="your name as the mate sees it (default: your login)")
    chat.add_argument("--no-stream", action="store_true", help="print each reply when complete")
    chat.add_argument(
        "--budget", type=int, metavar="TOKENS", help="the context budget instead of the mate's"
    )
    chat.set_defaults(run=_chat)

    from loopflow.launcher import add_red_command

    add_red_command(commands)
    return parser


def _list_mates(args: argparse.Namespace) -> int:
    mates: list[tuple[str, Mate]] = [("built-in", m) for m in builtin_mates().values()]
    mates += [(path, load_mate_file(path)) for path in args.files]
    width = max(len(mate.name) for _, mate in mates)
    for origin, mate in mates:
        model = mate.model or "default model"
        print(f"{mate.name:<{width}}  {mate.provider:<9}  {model:<20}  {mate.description}")
        if origin != "built-in":
            print(f"{'':<{width}}  from {origin}")
    return 0


def _chat(args: argparse.Namespace) -> int:
    mate = resolve_mate(args.mate)
    if args.model:
        mate = mate.replace(model=args.model)
    if args.budget is not None:
        mate = mate.replace(context_budget=args.budget)
    providers = _providers_from_environment()
    if mate.provider not in providers:
        spec = provider_spec(mate.provider)
        raise MissingKeyError(
            f"No API key for {mate.provider}: set {spec.key_variables[0]} "
            f"(and {spec.base_url_variable} for a compatible server)."
        )
    name = args.name or _login_name()
    return asyncio.run(_chat_loop(Session(providers), mate, name, sys.stdin, not args.no_stream))


async def _chat_loop(session: Session, mate: Mate, name: str, lines: TextIO, stream: bool) -> int:
    interactive = lines.isatty()
    store = InMemoryStore(limit=1)
    keeper = MemoryKeeper(session, store)
    turns: list[Turn] = []
    message_ids = itertools.count(1)  # the window's start is a message id
    status = 0

    async def start(mate: Mate, turns: Sequence[Turn]) -> ReplyStream:
        return await keeper.stream(
            mate, turns, guild=_CONVERSATION, conversation=_CONVERSATION, stream=stream
        )

    if interactive:
        print(
            f"Chatting with {mate.display_name}. /reset starts over, /memory shows what "
            f"{mate.display_name} keeps, /quit or Ctrl-D ends."
        )
    try:
        while True:
            if interactive:
                print(f"{name}> ", end="", flush=True)
            line = await asyncio.to_thread(lines.readline)
            if not line:
                break
            text = line.strip()
            if not text:
                continue
            if interactive and text in ("/quit", "/exit"):
                break
            if interactive and text == "/reset":
                turns.clear()
                await keeper.reset(_CONVERSATION, mate.name)
                print("(the conversation starts over)")
                continue
            if interactive and text == "/memory":
                await _show_memory(store, mate)
                continue
            turns.append(Turn(_YOU, name, text, message_id=next(message_ids)))
            sink = TerminalSink(mate, message_ids)
            outcome = await MateBot(session, mate, sink, stream=start, pacing=LIVE).run(turns)
            if not _end_reply(outcome):
                status = EXIT_FAILURE
                turns.pop()  # the message got no answer; the next one starts clean
                continue
            printed, _ = outcome.posted[-1]
            turns.append(await sink.turn(printed, outcome.text.strip()))
            # What the summary holds need not be kept: the chat's memory stays bounded.
            folded = (await store.load_window(_CONVERSATION, mate.name)).folded_until
            turns[:] = [turn for turn in turns if turn.message_id >= folded]
    finally:
        await keeper.aclose()
        for provider in set(session.providers.values()):
            await provider.aclose()
    return status


@dataclass(frozen=True)
class _Printed:
    """A reply printed in the terminal (the handle of a :class:`TerminalSink`)."""

    id: int
    room: int = sys.maxsize


class TerminalSink:
    """Prints a mate's reply as it grows: ``Maya: `` and then each new piece of text.

    With :data:`~loopflow.chat.streaming.LIVE` pacing the reply is one part that only
    grows, so each edit prints what was added. A terminal has no stop button and no
    typing indicator; its warnings go to stderr (see :func:`_end_reply`).
    """

    def __init__(self, mate: Mate, message_ids: Iterator[int]) -> None:
        self.mate = mate
        self.message_ids = message_ids
        self.shown = ""

    def part_limit(self) -> int:
        return sys.maxsize

    async def post(self, text: str) -> _Printed:
        print(f"{self.mate.display_name}: {text}", end="", flush=True)
        self.shown = text
        return _Printed(next(self.message_ids))

    async def edit(self, handle: _Printed, text: str) -> None:
        print(text[len(self.shown) :], end="", flush=True)
        self.shown = text

    def growing(self, handle: _Printed) -> None:
        pass

    def settled(self, handle: _Printed) -> None:
        pass

    def typing(self) -> None:
        pass

    def typed(self) -> None:
        pass

    def footnote(self, text: str) -> str:
        return f"\n({text})"

    async def turn(self, handle: _Printed, text: str) -> Turn:
        return Turn(_MATE, self.mate.display_name, text, handle.id, mate=self.mate.name)

    async def aclose(self) -> None:
        pass


def _end_reply(outcome: Outcome[_Printed]) -> bool:
    """End the printed reply's line and print its warnings or its failure (stderr);
    False when the mate could not answer."""
    if outcome.posted:
        print()
    if outcome.failure is not None:
        _error(str(outcome.failure))
        return False
    for warning in outcome.warnings:
        print(f"({warning})", file=sys.stderr)
    return bool(outcome.posted)


async def _show_memory(store: InMemoryStore, mate: Mate) -> None:
    """``/memory``: the summary of what left the window, and the notes about you."""
    state = await store.load_window(_CONVERSATION, mate.name)
    notes = await store.load_notes(_CONVERSATION, mate.name, [_YOU])
    print(f"Summary: {state.summary or '(none yet)'}")
    facts = notes.get(_YOU, [])
    print("Notes about you:" + "".join(f"\n- {fact}" for fact in facts) if facts else "Notes: none")


def _providers_from_environment() -> dict[str, Provider]:
    """Adapters for the providers whose API key the environment sets."""
    return {name: make_provider(name) for name in PROVIDER_NAMES if key_is_set(name)}


def _login_name() -> str:
    try:
        return getpass.getuser().capitalize()
    except (KeyError, OSError):
        return "You"


def _error(message: str) -> None:
    print(f"loopflow: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
