"""Parameters a model refused, found in the provider's error and remembered per model.

Known model families are sent what they accept (``loopflow.models``). For any other
model, a 400 saying a parameter is unsupported is answered by one retry without it (or
under the replacement name: ``max_tokens`` -> ``max_completion_tokens``), and the
refusal is remembered for that model, so later requests are right the first time.

Refusals are recognised in the wordings seen in the field:

* OpenAI (and Azure): ``code`` ``unsupported_parameter``/``unsupported_value`` with
  ``param``: "Unsupported parameter: 'max_tokens' is not supported with this model.
  Use 'max_completion_tokens' instead.";
* Anthropic: "`temperature` and `top_p` cannot both be specified for this model.", and
  from Claude Opus 4.7 and Sonnet 5 on "`temperature` is deprecated for this model.";
* LiteLLM's proxy: "openai does not support parameters: ['temperature'], for model=...";
* pydantic-validated servers: "top_k: Extra inputs are not permitted".
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Collection, Mapping
from typing import Any

_REFUSAL = re.compile(
    r"unsupported|not supported|does not support|not permitted|cannot both|"
    r"only the default|is not allowed with|deprecated for this model",
    re.IGNORECASE,
)
_USE_INSTEAD = re.compile(r"\buse\s+[`'\"]?(\w+)[`'\"]?\s+instead", re.IGNORECASE)


def is_refusal(message: str) -> bool:
    """Whether an error message says some parameter or value is not accepted."""
    return bool(_REFUSAL.search(message))


def suggested_replacement(message: str) -> str:
    """The parameter the message says to use instead (``Use 'x' instead``), or ``""``."""
    match = _USE_INSTEAD.search(message)
    return match.group(1) if match else ""


def named_parameter(message: str, candidates: Collection[str]) -> str:
    """The first of ``candidates`` the message names as a word, or ``""``."""
    found = []
    for name in candidates:
        match = re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", message)
        if match:
            found.append((match.start(), name))
    return min(found)[1] if found else ""


class RefusedParameters:
    """Per model, the parameters a provider refused and the name to send each as
    instead (``""``: leave it out). Bounded: the ``size`` models used most recently."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._by_model: OrderedDict[str, dict[str, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_model)

    def remember(self, model: str, parameter: str, replacement: str = "") -> None:
        """Send ``parameter`` as ``replacement`` (or not at all) to ``model`` from now on."""
        refused = self._by_model.setdefault(model, {})
        refused[parameter] = replacement
        self._by_model.move_to_end(model)
        while len(self._by_model) > self._size:
            self._by_model.popitem(last=False)

    def apply(self, model: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` as ``model`` accepts them, after what it refused before."""
        adjusted = dict(params)
        refused = self._by_model.get(model)
        if not refused:
            return adjusted
        self._by_model.move_to_end(model)
        for parameter, replacement in refused.items():
            if parameter in adjusted:
                value = adjusted.pop(parameter)
                if replacement:
                    adjusted[replacement] = value
        return adjusted
