"""The terminal CLI end to end: a subprocess, piped stdin, the fake LLM servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_llm import ThreadedFakeLLM, error, reply

MATE_FILE = """# Ada

## System Prompt

You are Ada, terse and exact.

## Provider

anthropic

## Model

claude-haiku-4-5
"""


def loopflow(args: list[str], stdin: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
    return subprocess.run(
        [sys.executable, "-m", "loopflow.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
    )


def openai_env(llm: ThreadedFakeLLM) -> dict[str, str]:
    return {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": llm.server.openai_base_url}


def test_chat_streams_each_reply_and_keeps_the_conversation(llm: ThreadedFakeLLM) -> None:
    llm.enqueue(reply("Hello Sam, what is on fire?"), reply("Then restart it."))
    result = loopflow(["chat", "maya", "--name", "Sam"], "hi maya\nthe db\n", openai_env(llm))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Maya: Hello Sam, what is on fire?",
        "Maya: Then restart it.",
    ]
    second = llm.server.requests[-1].json
    assert second["stream"] is True
    assert [m["content"] for m in second["messages"]] == [
        second["messages"][0]["content"],  # maya's system prompt
        "Sam: hi maya",
        "Hello Sam, what is on fire?",
        "Sam: the db",
    ]
    assert second["messages"][0]["role"] == "system"
    assert "You are Maya" in second["messages"][0]["content"]


def test_chat_with_a_mate_file_on_anthropic(llm: ThreadedFakeLLM, tmp_path: Path) -> None:
    path = tmp_path / "ada.md"
    path.write_text(MATE_FILE, encoding="utf-8")
    env = {"ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": llm.server.anthropic_base_url}
    llm.enqueue(reply("Exactly."))
    result = loopflow(["chat", str(path), "--name", "Sam"], "is 1 odd?\n", env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Ada: Exactly.\n"
    body = llm.server.requests[-1].json
    cached = {"type": "ephemeral"}  # prompt-cache breakpoints
    assert body["system"] == [
        {"type": "text", "text": "You are Ada, terse and exact.", "cache_control": cached}
    ]
    assert body["model"] == "claude-haiku-4-5"
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Sam: is 1 odd?", "cache_control": cached}],
        }
    ]


def test_chat_folds_what_leaves_the_window_into_a_summary(llm: ThreadedFakeLLM) -> None:
    lines = "".join(f"line {i}: the backup job ran long again tonight\n" for i in range(40))
    result = loopflow(["chat", "maya", "--name", "Sam", "--budget", "1000"], lines, openai_env(llm))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 40
    bodies = [r.json for r in llm.server.requests]
    folds = [b for b in bodies if "response_format" in b]
    assert folds and folds[0]["response_format"] == {"type": "json_object"}
    assert "Sam: line 0: the backup job" in folds[0]["messages"][1]["content"]
    replies = [b for b in bodies if "response_format" not in b]
    assert "Earlier in this conversation" in replies[-1]["messages"][0]["content"]
    assert "line 0:" not in str(replies[-1]["messages"][1:])  # it left the window


def test_a_provider_error_is_one_line_and_a_failing_exit(llm: ThreadedFakeLLM) -> None:
    llm.enqueue(error(401), reply("Works again."))
    result = loopflow(["chat", "maya", "--name", "Sam"], "one\ntwo\n", openai_env(llm))
    assert result.returncode == 1
    assert result.stderr.strip() == "loopflow: OpenAI rejected the API key."
    assert result.stdout == "Maya: Works again.\n"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["chat", "maya"], {}, "loopflow: No API key for openai: set OPENAI_API_KEY"),
        (["chat", "nobody"], {"OPENAI_API_KEY": "x"}, "loopflow: There is no built-in mate"),
        (["chat", "missing.md"], {"OPENAI_API_KEY": "x"}, "loopflow: missing.md: no such file."),
        (
            ["chat", "maya", "--model", "gpt`4"],
            {"OPENAI_API_KEY": "x"},
            "loopflow: 'gpt`4' is not a model name: use 1 to 100 characters",
        ),
        (
            ["chat", "maya"],
            {"OPENAI_API_KEY": "x", "LOOPFLOW_OPENAI_MODEL": "two words"},
            "loopflow: LOOPFLOW_OPENAI_MODEL: 'two words' is not a model name",
        ),
    ],
)
def test_setup_errors_are_one_line_with_a_usage_exit(
    args: list[str], env: dict[str, str], message: str
) -> None:
    result = loopflow(args, "hi\n", env)
    assert result.returncode == 2
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_the_launcher_refuses_a_bad_default_model_before_it_starts(tmp_path: Path) -> None:
    home = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)}
    env = {**home, "DISCORD_TOKEN": "t", "OPENAI_API_KEY": "x", "LOOPFLOW_ANTHROPIC_MODEL": "a b"}
    result = loopflow(["red"], "", env)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(
        "loopflow: LOOPFLOW_ANTHROPIC_MODEL: 'a b' is not a model name: use 1 to 100 characters"
    )
    assert list(tmp_path.iterdir()) == []  # no Red instance was created


def test_mates_lists_builtins_and_files(tmp_path: Path) -> None:
    path = tmp_path / "ada.md"
    path.write_text(MATE_FILE, encoding="utf-8")
    result = loopflow(["mates", str(path)], "", {})
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert names == ["maya", "merlin", "ada"]
    assert "claude-haiku-4-5" in result.stdout


def test_a_malformed_mate_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.md"
    path.write_text("# Broken\n\n## Provider\nopenai\n", encoding="utf-8")
    result = loopflow(["mates", str(path)], "", {})
    assert result.returncode == 2
    assert result.stderr.strip() == ("loopflow: broken.md: missing the '## System Prompt' section.")
