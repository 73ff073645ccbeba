"""Discord's text rules as pure functions on strings; this module never imports ``discord``.

* :func:`split_message`: a reply cut into messages of at most 2000 characters, on
  paragraph, line or sentence boundaries, code blocks closed and reopened with their
  language (implemented in :mod:`loopflow.io.splitting`).
* :func:`scrub_mentions` and :func:`resolve_mentions`: what the model sees of mentions.
* :func:`speaker_prefix`, :func:`prefixed` and :func:`strip_own_prefix`: the ``Alice: ...``
  convention that tells the model who speaks, and its echo removed from replies.
* :func:`sanitize_webhook_name`: a mate's display name that Discord accepts for a webhook.

Lengths are Python ``len`` (Unicode code points), which is how Discord counts characters.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Optional

from loopflow.io.splitting import DISCORD_MESSAGE_LIMIT, _inside_cluster, split_message

__all__ = [
    "DISCORD_MESSAGE_LIMIT",
    "SPEAKER_NAME_LIMIT",
    "WEBHOOK_NAME_LIMIT",
    "clean_display_name",
    "prefixed",
    "resolve_mentions",
    "sanitize_webhook_name",
    "scrub_mentions",
    "speaker_prefix",
    "split_message",
    "strip_own_prefix",
]

SPEAKER_NAME_LIMIT = 32
"""Longest speaker name put in front of a turn (Discord's own display-name limit)."""

WEBHOOK_NAME_LIMIT = 80
"""Longest name Discord accepts for a webhook message's author."""

_ZWSP = "\u200b"
_KEPT_FORMAT_CHARS = frozenset("\u200c\u200d")  # ZWNJ and ZWJ shape scripts and emoji
_DEFAULT_SPEAKER = "Someone"
_DEFAULT_WEBHOOK_NAME = "Mate"

_MASS_MENTION = re.compile(r"@(everyone|here)", re.IGNORECASE)
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_USER_MENTION = re.compile(r"<@!?(\d+)>")
_CHANNEL_MENTION = re.compile(r"<#(\d+)>")
_CUSTOM_EMOJI = re.compile(r"<a?:(\w+):\d+>")
_COMMAND_MENTION = re.compile(r"</([^<>:\n]+):\d+>")
_TIMESTAMP = re.compile(r"<t:(-?\d{1,13})(?::[tTdDfFR])?>")
_WHITESPACE = re.compile(r"\s+")
_COLON = r"[:：]"  # models writing CJK use the full-width colon
# Discord refuses these substrings in webhook names (HTTP 400). A Cyrillic look-alike
# letter keeps the name reading the same; python-discord's bot has used Cyrillic "е" for
# "clyde" since 2020. Zero-width characters are not used: Discord strips some of them.
_CYRILLIC_E = {"e": "\u0435", "E": "\u0415"}
_WEBHOOK_FORBIDDEN = (
    (re.compile(r"(?<=clyd)e", re.IGNORECASE), _CYRILLIC_E),
    (re.compile(r"(?<=disc)o(?=rd)", re.IGNORECASE), {"o": "\u043e", "O": "\u041e"}),
    # The whole name "everyone" or "here" (the username rules): its first "e" changes.
    (re.compile(r"(?<=\Ah)e(?=re\Z)|\Ae(?=veryone\Z)", re.IGNORECASE), _CYRILLIC_E),
)


def scrub_mentions(text: str) -> str:
    """Neutralise mass mentions: ``@everyone``, ``@here`` and role mentions ``<@&id>``.

    A zero-width space goes after the ``@`` (``"@\\u200beveryone"``, ``"<@&\\u200b123>"``),
    so the text reads the same but pings no one, and the model does not learn to emit
    working mass mentions. User mentions ``<@id>`` are left for :func:`resolve_mentions`.
    Sending with ``allowed_mentions`` set to none remains the real guard; this is defence in
    depth. Idempotent.
    """
    text = _MASS_MENTION.sub(lambda m: "@" + _ZWSP + m.group(1), text)
    return _ROLE_MENTION.sub(lambda m: "<@&" + _ZWSP + m.group(1) + ">", text)


def resolve_mentions(
    text: str,
    names: Mapping[int, str],
    channels: Optional[Mapping[int, str]] = None,
    roles: Optional[Mapping[int, str]] = None,
) -> str:
    """Turn Discord's markup into what a reader sees, so the model reads names, not ids.

    * ``<@123>`` and ``<@!123>`` become ``@Name`` when ``names`` knows the id;
    * ``<#123>`` becomes ``#name`` when ``channels`` knows it;
    * ``<@&123>`` becomes ``@Role`` when ``roles`` knows it;
    * custom emoji ``<:name:123>`` and ``<a:name:123>`` become ``:name:``;
    * command mentions ``</name sub:123>`` become ``/name sub``;
    * timestamps ``<t:1700000000:R>`` become ``2023-11-14 22:13 UTC``.

    Unknown ids are left as they are. Names are cleaned like speaker names, and a name that
    would read as a mass mention (a member called "everyone") is scrubbed.
    """

    def named(mapping: Optional[Mapping[int, str]], sigil: str) -> Callable[[re.Match[str]], str]:
        def replace(match: re.Match[str]) -> str:
            name = (mapping or {}).get(int(match.group(1)))
            if name is None:
                return match.group(0)
            cleaned = clean_display_name(name.lstrip(sigil), fallback=match.group(1))
            return scrub_mentions(sigil + cleaned)

        return replace

    text = _USER_MENTION.sub(named(names, "@"), text)
    text = _ROLE_MENTION.sub(named(roles, "@"), text)
    text = _CHANNEL_MENTION.sub(named(channels, "#"), text)
    text = _CUSTOM_EMOJI.sub(lambda m: ":" + m.group(1) + ":", text)
    text = _COMMAND_MENTION.sub(lambda m: "/" + m.group(1), text)
    return _TIMESTAMP.sub(_timestamp_text, text)


def clean_display_name(
    name: str, limit: int = SPEAKER_NAME_LIMIT, fallback: str = _DEFAULT_SPEAKER
) -> str:
    """``name`` on one line: invisible and control characters removed, whitespace runs
    (newlines included) collapsed to one space, stripped, cut to ``limit`` characters
    without splitting a character from its combining marks; ``fallback`` if nothing is left.
    """
    visible = "".join(char for char in name if not _is_hidden(char))
    collapsed = _WHITESPACE.sub(" ", visible).strip()
    return _truncate(collapsed, limit).rstrip() or fallback


SPEAKER_PREFIX_CACHE = 4096
"""Display names whose :func:`speaker_prefix` is remembered (least recently used first
out): a request renders every turn of its window, the same few names turn after turn."""


@functools.lru_cache(maxsize=SPEAKER_PREFIX_CACHE)
def speaker_prefix(display_name: str) -> str:
    """The prefix that names the speaker of a turn: ``"Alice: "``.

    The name is cleaned by :func:`clean_display_name` (one line, at most 32 characters,
    ``"Someone"`` when empty) and mass mentions in it are scrubbed. A colon inside the name
    is kept (``"Bob: the builder: hi"`` still reads right); a newline never survives, so a
    name cannot forge a second turn. Remembered per name (:data:`SPEAKER_PREFIX_CACHE`).
    """
    return scrub_mentions(clean_display_name(display_name)) + ": "


def prefixed(display_name: str, text: str) -> str:
    """``text`` as the model sees a human turn: ``"Alice: hello"``."""
    return speaker_prefix(display_name) + text


def strip_own_prefix(name: str, text: str) -> str:
    """Remove one leading ``"<name>:"`` that a model echoed from the prefixed history.

    Matches case-insensitively, ignoring leading whitespace, with any whitespace in the name
    matching any whitespace, and with the name optionally in bold or italics (``**Maya**:``,
    ``**Maya:**``, ``*Maya*:``). ``name`` may be the raw display name: its cleaned form (as
    :func:`speaker_prefix` showed it to the model) is tried too. Whitespace after the prefix
    goes with it. Text without the prefix comes back unchanged.
    """
    for candidate in dict.fromkeys((name.strip(), clean_display_name(name, fallback=""))):
        if not candidate:
            continue
        match = _own_prefix_pattern(candidate).match(text)
        if match:
            return text[match.end() :]
    return text


def sanitize_webhook_name(name: str) -> str:
    """A name Discord accepts as a webhook message's author, reading like ``name``.

    Discord's rules for webhook names (its docs, "Webhook" and "Usernames and
    Nicknames"): 1 to 80 characters after trimming (and collapsing whitespace), no
    "clyde" or "discord" in any case, and not exactly "everyone" or "here" in any case.
    So: invisible and control characters are removed, whitespace collapsed; in "clyde",
    "discord", and a whole name "everyone" or "here", one letter becomes its Cyrillic
    look-alike ("Clydе", "Discоrd", "еveryone", "Hеre" with Cyrillic е and о, case kept);
    the result is cut to 80 characters; an empty name becomes ``"Mate"``. The ``@ # : ```
    restrictions of account usernames do not apply to webhook names and are left alone.
    """
    cleaned = clean_display_name(name, limit=WEBHOOK_NAME_LIMIT, fallback=_DEFAULT_WEBHOOK_NAME)
    for pattern, look_alike in _WEBHOOK_FORBIDDEN:
        cleaned = pattern.sub(_swapper(look_alike), cleaned)
    return cleaned


def _swapper(look_alike: Mapping[str, str]) -> Callable[[re.Match[str]], str]:
    return lambda match: look_alike[match.group(0)]


def _own_prefix_pattern(name: str) -> re.Pattern[str]:
    core = r"\s+".join(re.escape(word) for word in name.split())
    variants = (
        rf"\*\*{core}\*\*\s*{_COLON}",
        rf"\*\*{core}\s*{_COLON}\s*\*\*",
        rf"\*{core}\*\s*{_COLON}",
        rf"\*{core}\s*{_COLON}\s*\*",
        rf"{core}\s*{_COLON}",
    )
    return re.compile(r"\s*(?:" + "|".join(variants) + r")\s*", re.IGNORECASE)


def _timestamp_text(match: re.Match[str]) -> str:
    try:
        moment = datetime.fromtimestamp(int(match.group(1)), tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return match.group(0)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _is_hidden(char: str) -> bool:
    """Control and invisible format characters, except those that shape visible text."""
    category = unicodedata.category(char)
    if category == "Cc":
        return not char.isspace()
    if category == "Cf":
        keep_tag = 0xE0020 <= ord(char) <= 0xE007F  # emoji subdivision flags
        return char not in _KEPT_FORMAT_CHARS and not keep_tag
    return False


def _truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, backing off a split combining sequence."""
    if len(text) <= limit:
        return text
    cut = limit
    while cut > 0 and _inside_cluster(text, cut):
        cut -= 1
    return text[: cut or limit]
