"""Mates: the value type, its validation, loopflow mate files and the built-in mates.

A loopflow mate file is markdown::

    # Maya
    ## System Prompt
    You are Maya, ...
    ## Provider
    openai
    ## Model            (optional)
    ## Temperature      (optional)
    ## Avatar           (optional)
    ## Description      (optional)
    ## Chime            (optional: percent chance of chiming in, 0-100)

The ``# Title`` is the display name; the mate's name is its slug (``maya``), or the
optional ``## Name`` section when it differs. Only the section titles above start a
section: any other ``##`` line (and anything inside a code fence) belongs to the
section's text, so prompts may use markdown headings. Headings and code fences follow
CommonMark (a closing ``#`` sequence needs a space before it; a fence closes with a line
of at least as many of its backticks or tildes).

A section whose whole text is one code block with the info string ``verbatim`` holds
exactly the text inside the block. :func:`render_mate_file` writes a value that way only
when it would not read back unchanged otherwise (a prompt with a ``## Provider`` line or
a lone fence), so every mate survives export and import.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loopflow.errors import MateError, MateFileError, UnknownMateError
from loopflow.io.markdown import read_lines, section_text, section_value
from loopflow.models import PROVIDER_NAMES, provider_spec, validate_model

# Provider and model knowledge lives in loopflow.models; this name stays importable from
# here for the code that used it (the redundant alias marks it as a re-export).
from loopflow.models import provider_for_model as provider_for_model

#: The providers a mate may name.
PROVIDERS = PROVIDER_NAMES
NAME_PATTERN = re.compile(r"^[a-z0-9_-]{1,32}$")
MAX_DISPLAY_NAME = 80
MAX_PROMPT_CHARS = 16_000
MAX_DESCRIPTION_CHARS = 200
# Far above any real avatar URL (Discord's CDN links are about 150 characters), and small
# enough that a stored mate stays small.
MAX_URL_CHARS = 2048
GENERIC_PROMPT = (
    "You are {display_name}, a friendly member of this Discord server. Answer the people "
    "talking with you helpfully and concisely, in the language they use."
)

_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "display_name": (str,),
    "system_prompt": (str,),
    "provider": (str,),
    "model": (str,),
    "temperature": (int, float, type(None)),
    "max_output_tokens": (int,),
    "context_budget": (int,),
    "avatar_url": (str,),
    "description": (str,),
    "chime": (int,),
}
_FIELD_LIMITS = {
    "max_output_tokens": (1, 64_000),
    "context_budget": (256, 2_000_000),
    "chime": (0, 100),
}


@dataclass(frozen=True)
class Mate:
    """A named LLM persona.

    ``model`` may be empty: the caller's default model for the provider is then used.
    ``temperature`` (None: the model's default) must lie in the provider's range
    (``loopflow.models``: 0-2 for OpenAI, 0-1 for Anthropic). ``chime`` is the percent
    chance that the mate adds a reply where another mate bound with it answered a person
    (PRODUCT.md section 11; 0: never).
    """

    name: str
    display_name: str
    system_prompt: str
    provider: str = "openai"
    model: str = ""
    temperature: float | None = None
    max_output_tokens: int = 1024
    context_budget: int = 16_000
    avatar_url: str = ""
    description: str = ""
    chime: int = 0

    def __post_init__(self) -> None:
        for field, kinds in _FIELD_TYPES.items():
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise MateError(f"{field.replace('_', ' ')} cannot be {type(value).__name__}.")
        # Normalise what a mate file cannot preserve, so files round-trip exactly; line
        # endings mean nothing to a model.
        object.__setattr__(self, "display_name", " ".join(self.display_name.split()))
        prompt = self.system_prompt.replace("\r\n", "\n").replace("\r", "\n")
        object.__setattr__(self, "system_prompt", prompt.strip())
        object.__setattr__(self, "description", " ".join(self.description.split()))
        validate_name(self.name)
        if not self.display_name.strip() or len(self.display_name) > MAX_DISPLAY_NAME:
            raise MateError(f"A display name needs 1 to {MAX_DISPLAY_NAME} characters.")
        if not self.system_prompt.strip():
            raise MateError("The system prompt is empty.")
        if len(self.system_prompt) > MAX_PROMPT_CHARS:
            raise MateError(
                f"The system prompt has {len(self.system_prompt):,} characters; "
                f"the limit is {MAX_PROMPT_CHARS:,}."
            )
        spec = provider_spec(self.provider)
        if self.model:
            validate_model(self.model)
        low, high = spec.temperature_range
        if self.temperature is not None and not low <= self.temperature <= high:
            raise MateError(f"temperature must be between {low:g} and {high:g} for {spec.title}.")
        for field, (low, high) in _FIELD_LIMITS.items():
            value = getattr(self, field)
            if value is not None and not low <= value <= high:
                raise MateError(f"{field.replace('_', ' ')} must be between {low} and {high}.")
        if self.avatar_url:
            validate_url(self.avatar_url)
        if len(self.description) > MAX_DESCRIPTION_CHARS:
            raise MateError(f"A description has at most {MAX_DESCRIPTION_CHARS} characters.")

    def replace(self, **changes: object) -> Mate:
        """A copy with ``changes`` applied and validated.

        Moving to a provider whose range the mate's temperature is outside of is refused
        with a message saying to lower the temperature first (rather than changing it
        behind the admin's back).
        """
        provider = changes.get("provider", self.provider)
        temperature = changes.get("temperature", self.temperature)
        if provider != self.provider and provider in PROVIDERS and "temperature" not in changes:
            spec = provider_spec(str(provider))
            low, high = spec.temperature_range
            if isinstance(temperature, (int, float)) and not low <= temperature <= high:
                raise MateError(
                    f"{spec.title} takes a temperature from {low:g} to {high:g}, and "
                    f"{self.display_name}'s is {temperature:g}: lower it first, or set it "
                    "back to the default."
                )
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-safe fields, as stored by the cog."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Mate:
        """Build a mate from stored fields, ignoring fields this version does not know.

        A stored temperature outside the provider's range (saved before ranges were per
        provider) is brought into it: the provider refused the old value anyway.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in data.items() if k in known}
        temperature = fields.get("temperature")
        provider = str(fields.get("provider", "openai"))
        if provider in PROVIDER_NAMES and isinstance(temperature, (int, float)):
            low, high = provider_spec(provider).temperature_range
            fields["temperature"] = min(max(float(temperature), low), high)
        return cls(**fields)  # type: ignore[arg-type]


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid mate name, else raise :class:`MateError`."""
    if not NAME_PATTERN.match(name):
        raise MateError(
            f"{name[:40]!r} is not a valid mate name: use 1 to 32 characters of a-z, 0-9, _ and -."
        )
    return name


def validate_url(url: str) -> str:
    """Return ``url`` if it is an absolute http(s) URL with a host, else raise
    :class:`MateError` (never another exception): at most :data:`MAX_URL_CHARS`
    characters, no whitespace or control characters, a valid port if any.
    """
    bad = MateError(f"{str(url)[:100]!r} is not an http(s) URL.")
    if not isinstance(url, str) or not url:
        raise bad
    if len(url) > MAX_URL_CHARS:
        raise MateError(
            f"{url[:100]!r}... is not an http(s) URL of at most {MAX_URL_CHARS:,} characters."
        )
    if any(char.isspace() or unicodedata.category(char) == "Cc" for char in url):
        raise bad
    try:
        parsed = urlsplit(url)
        parsed.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:  # "Invalid IPv6 URL" for https://[x, a bad port
        raise bad from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise bad
    return url


def slugify(title: str) -> str:
    """The mate name for a display name: ``"Dr. Ada Lovelace"`` -> ``"dr-ada-lovelace"``."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9_]+", "-", ascii_title.lower()).strip("-")
    return slug[:32].rstrip("-")


def generic_mate(name: str) -> Mate:
    """A new mate with a short generic prompt, for names with no built-in definition."""
    display_name = name.replace("-", " ").replace("_", " ").title()
    return Mate(
        name=validate_name(name),
        display_name=display_name,
        system_prompt=GENERIC_PROMPT.format(display_name=display_name),
    )


# --- mate files -------------------------------------------------------------------------

_SECTIONS = (
    "name",
    "system prompt",
    "provider",
    "model",
    "temperature",
    "max output tokens",
    "context budget",
    "avatar",
    "description",
    "chime",
)
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Mate)}


def parse_mate_file(text: str, source: str | None = None) -> Mate:
    """Parse a loopflow mate file; raise :class:`MateFileError` naming what is wrong.

    Linear in the length of ``text`` (no regular expression backtracks on it).
    """
    title, sections = _split_sections(text, source)
    if "system prompt" not in sections:
        raise MateFileError("missing the '## System Prompt' section.", source)
    if "provider" not in sections:
        raise MateFileError("missing the '## Provider' section.", source)
    name = sections.get("name", "").strip().lower() or slugify(title)
    if not name:
        raise MateFileError(f"the title {title[:60]!r} gives no usable mate name.", source)
    provider = sections["provider"].strip().lower()
    try:
        return Mate(
            name=name,
            display_name=title,
            system_prompt=sections["system prompt"].strip(),
            provider=provider,
            model=sections.get("model", "").strip(),
            temperature=_parse_number(sections.get("temperature", ""), float, source),
            max_output_tokens=_parse_number(
                sections.get("max output tokens", ""), int, source, _DEFAULTS["max_output_tokens"]
            ),
            context_budget=_parse_number(
                sections.get("context budget", ""), int, source, _DEFAULTS["context_budget"]
            ),
            avatar_url=sections.get("avatar", "").strip(),
            description=" ".join(sections.get("description", "").split()),
            chime=_parse_number(sections.get("chime", ""), int, source, _DEFAULTS["chime"]),
        )
    except MateFileError:
        raise
    except MateError as exc:
        raise MateFileError(str(exc), source) from exc


def render_mate_file(mate: Mate) -> str:
    """A mate as a loopflow mate file; :func:`parse_mate_file` reads it back unchanged.

    Values are written as plain markdown when that reads back unchanged, else in a
    ``verbatim`` code block (see the module docstring).
    """
    title = mate.display_name + (" #" if mate.display_name.endswith("#") else "")
    parts = [f"# {title}", ""]
    sections = {
        "Name": "" if mate.name == slugify(mate.display_name) else mate.name,
        "System Prompt": mate.system_prompt,
        "Provider": mate.provider,
        "Model": mate.model,
        "Temperature": "" if mate.temperature is None else repr(mate.temperature),
        "Max Output Tokens": _non_default(mate, "max_output_tokens"),
        "Context Budget": _non_default(mate, "context_budget"),
        "Avatar": mate.avatar_url,
        "Description": mate.description,
        "Chime": _non_default(mate, "chime"),
    }
    for heading, value in sections.items():
        if value:
            parts += [f"## {heading}", "", section_text(value), ""]
    return "\n".join(parts)


def load_mate_file(path: str | Path) -> Mate:
    """Read and parse a mate file from disk."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MateFileError(f"cannot be read ({exc.__class__.__name__}).", str(path)) from exc
    return parse_mate_file(text, source=path.name)


def _split_sections(text: str, source: str | None) -> tuple[str, dict[str, str]]:
    title: str | None = None
    current: str | None = None
    sections: dict[str, list[str]] = {}
    for line, heading in read_lines(text.replace("\r\n", "\n").replace("\r", "\n")):
        if heading and heading[0] == 1 and title is None:
            title = heading[1]
            continue
        if heading and heading[0] == 2 and heading[1].lower() in _SECTIONS:
            current = heading[1].lower()
            if current in sections:
                raise MateFileError(f"the '## {heading[1][:40]}' section appears twice.", source)
            sections[current] = []
            continue
        if current is not None:
            sections[current].append(line)
        elif line.strip() and title is not None:
            raise MateFileError(f"unexpected text before the first section: {line[:60]!r}", source)
    if not title:
        raise MateFileError("missing the '# Name' title.", source)
    return title, {key: section_value(lines) for key, lines in sections.items()}


def _parse_number(value: str, kind: type, source: str | None, default: object = None) -> Any:
    value = value.strip()
    if not value:
        return default
    try:
        return kind(value)
    except ValueError:
        raise MateFileError(f"{value[:40]!r} is not a valid {kind.__name__}.", source) from None


def _non_default(mate: Mate, field: str) -> str:
    value = getattr(mate, field)
    return "" if value == _DEFAULTS[field] else str(value)


# --- built-in mates --------------------------------------------------------------------


def builtin_mates() -> dict[str, Mate]:
    """The mates shipped with the package (maya, merlin), by name."""
    folder = resources.files("loopflow") / "mates_data"
    mates = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".md"):
            mate = parse_mate_file(entry.read_text(encoding="utf-8"), source=entry.name)
            mates[mate.name] = mate
    return mates


def builtin_mate(name: str) -> Mate:
    """The built-in mate called ``name``; :class:`UnknownMateError` if there is none."""
    try:
        return builtin_mates()[name.lower()]
    except KeyError:
        raise UnknownMateError(f"There is no built-in mate called {name!r}.") from None


def resolve_mate(spec: str) -> Mate:
    """A built-in mate by name, or a mate file by path (``*.md`` or an existing file)."""
    path = Path(spec)
    if spec.endswith(".md") or path.is_file():
        if not path.is_file():
            raise MateFileError("no such file.", spec)
        return load_mate_file(path)
    return builtin_mate(spec)
