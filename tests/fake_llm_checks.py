"""What the real OpenAI and Anthropic APIs refuse, so the fake server refuses it too.

A request the real API would answer with a 4xx gets the same status and error shape
from the fake (``tests/fake_llm.py`` checks every request before it takes a scripted
behaviour), so a test sees what production would see. The rules and their wording come
from the providers' API references and the errors they answer with (2025-2026):

OpenAI (Chat Completions)
    * no ``Authorization: Bearer <key>`` header: 401;
    * a ``user``/``system`` message whose ``content`` is missing or null: 400;
    * reasoning models (o-series, the gpt-5 and gpt-6 families, and any name in
      ``reasoning_models``): ``max_tokens`` is an ``unsupported_parameter`` (use
      ``max_completion_tokens``), and a ``temperature`` other than 1 is an
      ``unsupported_value`` (GPT-6 takes one only with ``reasoning_effort`` ``none``,
      which GPT-6.1 Sol and later refuse).

Anthropic (Messages)
    * neither ``x-api-key`` nor ``Authorization: Bearer`` (an auth token): 401;
    * ``max_tokens`` missing, ``temperature`` outside 0-1, ``temperature`` with ``top_p``
      (refused by the newer models);
    * any ``temperature`` for Claude Opus 4.7 and later and every Claude 5.x model (Fable,
      Mythos, Opus, Sonnet, Haiku): "`temperature` is deprecated for this model." (400);
    * no messages, a first message that is not the user's, two turns of one role in a
      row, or a message with empty content: 400;
    * a ``system`` that is neither a string nor a list of non-empty text blocks, a
      ``cache_control`` whose type is not ``ephemeral``, or more than 4 blocks marked
      with ``cache_control`` (system and messages together): 400.

OpenAI
    * a ``prompt_cache_key`` that is not a string: 400.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Optional

#: o1, o3-mini, o4-mini, gpt-5, gpt-5-mini, gpt-5.1, openai/gpt-5 ... (the fake's own rule,
#: written apart from loopflow's table so the tests check the table against it).
REASONING_MODEL = re.compile(r"(?:^|/)(?:o\d+|gpt-[56])(?:$|[-.:])")
#: claude-opus-4-7, claude-opus-4-8, claude-sonnet-5, claude-haiku-5-5, claude-fable-5-2,
#: claude-mythos-5-1 ... : the models that refuse a temperature (the fake's own rule).
NO_SAMPLING_MODEL = re.compile(
    r"^claude-(?:fable|mythos|(?:opus|sonnet|haiku)-5|opus-4-[78])(?:$|[-@])"
)


@dataclass(frozen=True)
class Refusal:
    """An HTTP error the real API would answer with."""

    status: int
    message: str
    error_type: str = "invalid_request_error"
    code: Optional[str] = None
    param: Optional[str] = None


def openai_refusal(
    headers: Mapping[str, str], body: Any, reasoning_models: Collection[str] = ()
) -> Optional[Refusal]:
    """The error OpenAI would answer ``body`` with, or None if it would accept it."""
    auth = headers.get("authorization", "")
    if not auth.startswith("Bearer ") or not auth[len("Bearer ") :].strip():
        return Refusal(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    for index, message in enumerate(body.get("messages") or []):
        if message.get("role") in ("user", "system") and message.get("content") is None:
            return Refusal(
                400,
                "Invalid value for 'content': expected a string, got null.",
                param=f"messages.[{index}].content",
            )
    if "prompt_cache_key" in body and not isinstance(body["prompt_cache_key"], str):
        return Refusal(
            400,
            "Invalid type for 'prompt_cache_key': expected a string.",
            code="invalid_type",
            param="prompt_cache_key",
        )
    model = str(body.get("model", ""))
    if model in reasoning_models or REASONING_MODEL.search(model.lower()):
        if "max_tokens" in body:
            return Refusal(
                400,
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.",
                code="unsupported_parameter",
                param="max_tokens",
            )
        temperature = body.get("temperature")
        if temperature is not None and temperature != 1:
            return Refusal(
                400,
                f"Unsupported value: 'temperature' does not support {temperature} with this "
                "model. Only the default (1) value is supported.",
                code="unsupported_value",
                param="temperature",
            )
    return None


def anthropic_refusal(headers: Mapping[str, str], body: Any) -> Optional[Refusal]:
    """The error Anthropic would answer ``body`` with, or None if it would accept it."""
    bearer = headers.get("authorization", "")
    if not headers.get("x-api-key", "").strip() and not bearer[len("Bearer ") :].strip():
        return Refusal(401, "x-api-key header is required", "authentication_error")
    if "max_tokens" not in body:
        return Refusal(400, "max_tokens: Field required")
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        bound = "less than or equal to 1" if temperature > 1 else "greater than or equal to 0"
        return Refusal(400, f"temperature: Input should be {bound}")
    if temperature is not None and NO_SAMPLING_MODEL.match(str(body.get("model", ""))):
        return Refusal(400, "`temperature` is deprecated for this model.")
    if temperature is not None and body.get("top_p") is not None:
        return Refusal(
            400,
            "`temperature` and `top_p` cannot both be specified for this model. "
            "Please use only one.",
        )
    return _anthropic_cache_refusal(body) or _anthropic_turns_refusal(body.get("messages") or [])


#: The most blocks one Messages API request may mark with ``cache_control``.
MAX_CACHE_BREAKPOINTS = 4


def _anthropic_cache_refusal(body: Any) -> Optional[Refusal]:
    """A bad ``system`` shape, or ``cache_control`` the API refuses."""
    system = body.get("system")
    blocks: list[Any] = []
    if isinstance(system, list):
        if not all(b.get("type") == "text" and str(b.get("text", "")).strip() for b in system):
            return Refusal(400, "system: text content blocks must be non-empty")
        blocks += system
    elif system is not None and not isinstance(system, str):
        return Refusal(400, "system: Input should be a valid string or list of blocks")
    for message in body.get("messages") or []:
        content = message.get("content")
        blocks += content if isinstance(content, list) else []
    marked = [b["cache_control"] for b in blocks if b.get("cache_control") is not None]
    if any(not isinstance(m, dict) or m.get("type") != "ephemeral" for m in marked):
        return Refusal(400, "cache_control.type: Input should be 'ephemeral'")
    if len(marked) > MAX_CACHE_BREAKPOINTS:
        return Refusal(
            400,
            f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be "
            f"provided. Found {len(marked)}.",
        )
    return None


def _anthropic_turns_refusal(messages: list[Any]) -> Optional[Refusal]:
    if not messages:
        return Refusal(400, "messages: at least one message is required")
    if messages[0].get("role") != "user":
        return Refusal(400, 'messages: first message must use the "user" role')
    for index, message in enumerate(messages):
        role = message.get("role")
        if index and role == messages[index - 1].get("role"):
            return Refusal(
                400,
                'messages: roles must alternate between "user" and "assistant", but found '
                f'multiple "{role}" roles in a row',
            )
        content = message.get("content")
        final_assistant = role == "assistant" and index == len(messages) - 1
        blank = not content or (isinstance(content, str) and not content.strip())
        if blank and not final_assistant:
            return Refusal(
                400,
                f"messages.{index}: all messages must have non-empty content except for the "
                "optional final assistant message",
            )
        blocks = content if isinstance(content, list) else []
        if any(b.get("type") == "text" and not b.get("text", "").strip() for b in blocks):
            return Refusal(400, "messages: text content blocks must contain non-whitespace text")
    return None
