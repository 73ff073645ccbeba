"""The terminal CLI's own commands, typed at a real terminal: ``/reset`` and ``/quit``.

They are for people at a terminal (README: "chat in the terminal; /reset, /quit"), so the
CLI runs with its stdin on a pseudo-terminal, as when someone types; its output is read
from a pipe. The fake LLM servers answer.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fake_llm import ThreadedFakeLLM, reply


def typed(llm: ThreadedFakeLLM, lines: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``loopflow chat maya --name Sam`` with ``lines`` typed at its terminal.

    The terminal stays open after the last line (no end of input): the CLI must end by
    itself, through ``/quit``, or the 30 s timeout fails the test.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
    env |= {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": llm.server.openai_base_url}
    terminal, stdin = os.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loopflow.cli", "chat", "maya", "--name", "Sam"],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        os.close(stdin)
        os.write(terminal, "".join(f"{line}\n" for line in lines).encode())
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"the CLI did not end by itself:\n{out}\n{err}")
    finally:
        os.close(terminal)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def user_texts(llm: ThreadedFakeLLM, index: int) -> list[str]:
    """The non-system message texts of request ``index``."""
    messages = llm.server.requests[index].json["messages"]
    return [m["content"] for m in messages if m["role"] != "system"]


def test_reset_starts_over_and_quit_ends_the_chat(llm: ThreadedFakeLLM) -> None:
    llm.enqueue(reply("Hello Sam."), reply("Fresh start."))
    done = typed(llm, ["remember teapot", "/reset", "what did I say?", "/quit", "never sent"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Chatting with Maya. /reset starts over, /memory shows what")
    assert "Maya: Hello Sam." in done.stdout
    assert "(the conversation starts over)" in done.stdout
    assert "Maya: Fresh start." in done.stdout
    assert len(llm.server.requests) == 2  # nothing after /quit reached the model
    assert user_texts(llm, 0) == ["Sam: remember teapot"]
    assert user_texts(llm, 1) == ["Sam: what did I say?"]  # the reset forgot the rest


def test_without_a_reset_the_conversation_goes_on(llm: ThreadedFakeLLM) -> None:
    llm.enqueue(reply("Hello Sam."), reply("You said teapot."))
    done = typed(llm, ["remember teapot", "what did I say?", "/exit"])
    assert done.returncode == 0, done.stderr
    assert user_texts(llm, 1) == ["Sam: remember teapot", "Hello Sam.", "Sam: what did I say?"]
