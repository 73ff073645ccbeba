"""The one line a channel sees when a mate cannot answer."""

from __future__ import annotations

from loopflow.errors import EmptyReplyError, ProviderError, RequestError
from loopflow_cog.failures import REASON_CHARS, WARNING, bad_model_line, failure_line


def test_a_request_error_names_the_reason_in_a_few_words_without_secrets() -> None:
    words = "Unsupported value: 'temperature' does not support 0.7 with this model. " * 5
    raw = f"Key sk-proj-abcdef0123456789 at https://gw.internal/v1: {words}"
    # Adapters scrub already; the line does it again whatever reached it.
    error = RequestError("OpenAI rejected the request", "openai", raw)
    line = failure_line(error, "Maya", "!")
    assert line.startswith(WARNING + "Maya can't answer: OpenAI refused the request: Key [key]")
    assert "sk-proj" not in line and "gw.internal" not in line and "https" not in line
    assert len(line) < len(WARNING) + 80 + REASON_CHARS
    assert line.endswith("...")


def test_a_reason_cannot_break_out_of_the_lines_formatting() -> None:
    error = RequestError("x", "anthropic", "model: `claude-nope` not found")
    line = failure_line(error, "Merlin", "!")
    assert line == WARNING + (
        "Merlin can't answer: Anthropic refused the request: model: 'claude-nope' not found."
    )


def test_an_empty_reply_is_one_short_line() -> None:
    line = failure_line(EmptyReplyError("Maya had nothing to say.", "openai"), "Maya", "!")
    assert line == WARNING + "Maya had nothing to say."


def test_other_provider_errors_keep_the_generic_line() -> None:
    assert failure_line(ProviderError("?", "anthropic"), "Merlin", "!") == (
        WARNING + "Merlin can't answer: Anthropic returned an error."
    )


def test_a_bad_stored_default_model_is_shown_short_and_inert() -> None:
    line = bad_model_line("Maya", "openai", "two `words` " + "x" * 200, "?")
    assert line.startswith(
        WARNING + "Maya can't answer: this server's default OpenAI model `two 'words' xxx"
    )
    assert line.endswith("An admin can set another with `?mateset defaultmodel openai <model>`.")
    assert line.count("`") == 4  # the name's backticks cannot open a code span
    assert "xxx...`" in line and "x" * 40 not in line  # cut to a few words
