"""README's promises about keys, files, DMs and data, on a real Red process.

- "[p]set api ... takes precedence" over the environment, "at once, without a restart";
- "Small text attachments are read; images go to vision models";
- DM replies longer than a message arrive whole, in embeds within Discord's limits;
- "Keys never appear in messages or logs" and "Message content is not stored": the last
  test reads every file Red wrote (its output, its logs, its Config) and every message
  in the fake Discord, looking for the keys and for the texts this module sent.

The tests run in order; the last one relies on what the others did.
"""

from __future__ import annotations

from typing import Any, Optional

import pytest
from e2e_helpers import bound_channel
from fake_discord import FakeDiscord, Message
from fake_llm import ThreadedFakeLLM, reply
from harness import provider_env

ENV_KEYS = {"openai": "sk-env-openai-7d41c0a9e2f3", "anthropic": "sk-ant-env-52be8d13c6a7"}
SET_KEYS = {"openai": "sk-set-openai-0c9f3e6b2a18", "anthropic": "sk-ant-set-e4a7d0b93f51"}
KEY_HEADERS = {"openai": ("authorization", "Bearer {}"), "anthropic": ("x-api-key", "{}")}
# Texts that must reach the provider but never Red's files.
SAID = "ultramarine-walrus-4417 is my password hint"
FILE_TEXT = "the launch code is tangerine-falcon-5590"
DM_TEXT = "velvet-harbor-8823: please write me a long story"
REPLY_TEXT = "quokka-reply-3306 is what maya says"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # the bytes do not matter: the URL goes to the model


@pytest.fixture(scope="module")
def red_env(llm: ThreadedFakeLLM) -> dict[str, Optional[str]]:
    env = provider_env(llm)
    env["OPENAI_API_KEY"] = ENV_KEYS["openai"]
    env["ANTHROPIC_API_KEY"] = ENV_KEYS["anthropic"]
    return env


pytestmark = pytest.mark.usefixtures("mates")


@pytest.fixture(scope="module")
def mate_names() -> tuple[str, ...]:
    return ("maya", "merlin")


async def ask(
    discord: FakeDiscord,
    llm: ThreadedFakeLLM,
    channel: int,
    text: str,
    files: Optional[list[tuple[str, Any]]] = None,
) -> Message:
    """Send ``text`` (and ``files``) as bob; wait for the mate's answer; the sent message."""
    llm.enqueue(reply(f"Re: {text}"))
    sent = await discord.send(discord.member, channel, text, files=files)
    await discord.wait_for_message(lambda m: m.content == f"Re: {text}", channel=channel)
    return sent


def last_user_content(llm: ThreadedFakeLLM) -> Any:
    """The content of the last user message of the last request (a string or parts).

    Prompt-cache hints (Anthropic's ``cache_control``) are not content and are dropped;
    content that is one text block reads as its text, as the APIs treat it.
    """
    messages = llm.server.requests[-1].json["messages"]
    content = [m for m in messages if m["role"] == "user"][-1]["content"]
    if isinstance(content, list):
        content = [{k: v for k, v in part.items() if k != "cache_control"} for part in content]
        if len(content) == 1 and content[0].get("type") == "text":
            return content[0]["text"]
    return content


@pytest.mark.parametrize(("provider", "mate"), [("openai", "maya"), ("anthropic", "merlin")])
async def test_a_key_set_in_discord_wins_over_the_environment_at_once(
    discord, red, llm, provider: str, mate: str
) -> None:
    channel = await bound_channel(discord, f"keys-{provider}", mate)
    header, shape = KEY_HEADERS[provider]
    starts = red.starts

    async def key_used(text: str) -> str:
        await ask(discord, llm, channel, text)
        return llm.server.requests[-1].headers[header]

    assert await key_used("before") == shape.format(ENV_KEYS[provider])
    done = await discord.command(
        discord.owner, "admin", f"!set api {provider} api_key,{SET_KEYS[provider]}"
    )
    assert done.content == f"`{provider}` API tokens have been set."
    assert await key_used("after") == shape.format(SET_KEYS[provider])
    removed = await discord.command(discord.owner, "admin", f"!set api remove {provider}")
    assert provider in removed.content
    assert await key_used("removed") == shape.format(ENV_KEYS[provider])
    assert red.starts == starts  # no restart


async def test_text_attachments_are_read_and_images_go_to_vision_models(discord, llm) -> None:
    channel = await bound_channel(discord, "files", "maya")
    await ask(discord, llm, channel, "read this", files=[("notes.txt", FILE_TEXT)])
    assert last_user_content(llm) == f"Bob: read this\n\n[notes.txt]\n{FILE_TEXT}"

    # gpt-4o-mini sees images: a text part and the image's URL.
    await discord.command(discord.owner, "admin", "!mate model maya gpt-4o-mini")
    sent = await ask(discord, llm, channel, "what is this?", files=[("cat.png", PNG)])
    url = discord.message(sent).attachments[0].url
    assert last_user_content(llm) == [
        {"type": "text", "text": "Bob: what is this?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    # So does Claude, in Anthropic's shape.
    await discord.command(discord.owner, "admin", "!mate model maya claude-haiku-4-5")
    sent = await ask(discord, llm, channel, "and this?", files=[("dog.png", PNG)])
    url = discord.message(sent).attachments[0].url
    content = last_user_content(llm)
    assert {"type": "image", "source": {"type": "url", "url": url}} in content
    assert {"type": "text", "text": "Bob: and this?"} in content
    # A model without vision gets the text (and maybe a note), not the image.
    await discord.command(discord.owner, "admin", "!mate model maya gpt-3.5-turbo")
    try:
        sent = await ask(discord, llm, channel, "and now?", files=[("bird.png", PNG)])
        url = discord.message(sent).attachments[0].url
        content = last_user_content(llm)
        assert isinstance(content, str) and content.startswith("Bob: and now?")
        request = str(llm.server.requests[-1].json)
        assert "image_url" not in request and url not in request
    finally:
        await discord.command(discord.owner, "admin", "!mate model maya gpt-4o-mini")


async def test_a_long_dm_reply_arrives_whole_in_embeds(discord, llm) -> None:
    reader = await discord.add_member("reader")
    chosen = await discord.command(reader, "general", "!mate dm maya")
    assert chosen.content == "**Maya** now answers your DMs to me."
    paragraphs = [f"Part {i}: " + "the tide comes in and goes out again. " * 14 for i in range(20)]
    story = "\n\n".join(paragraphs)
    assert len(story) > 2 * 4096
    llm.enqueue(reply(story))
    dm = discord.dm(reader).id
    sent = await discord.send(reader, dm, DM_TEXT)

    def delivered(fake: FakeDiscord) -> Optional[list[Message]]:
        parts = [m for m in fake.messages(dm, after=sent) if m.author.bot]
        shown = " ".join(m.embeds[0]["description"] for m in parts if m.embeds)
        return parts if shown.split() == story.split() else None  # nothing lost or added

    parts = await discord.wait_until(delivered, timeout=30, what="the whole story in the DM")
    texts = [m.embeds[0]["description"] for m in parts]
    assert len(texts) >= 3 and all(len(text) <= 4096 for text in texts)
    assert all(m.embeds[0]["author"]["name"] == "Maya" and not m.content for m in parts)
    for paragraph in paragraphs:  # split between paragraphs, not inside one
        assert any(paragraph.strip() in text for text in texts), paragraph[:20]
    assert last_user_content(llm) == f"Reader: {DM_TEXT}"


async def test_keys_and_message_texts_stay_out_of_red_logs_and_storage(discord, red, llm) -> None:
    channel = await bound_channel(discord, "private", "maya")
    llm.enqueue(reply(REPLY_TEXT))
    await discord.send(discord.member, channel, SAID)
    await discord.wait_for_message(lambda m: m.content == REPLY_TEXT, channel=channel)
    assert last_user_content(llm) == f"Bob: {SAID}"
    # The keys are set once more and kept, so Red's own token store holds one of them.
    await discord.command(discord.owner, "admin", f"!set api openai api_key,{SET_KEYS['openai']}")
    await red.restart()  # Red and the cog save and close everything they keep

    keys = [*ENV_KEYS.values(), *SET_KEYS.values()]
    texts = ["ultramarine-walrus", "tangerine-falcon", "velvet-harbor", "quokka-reply"]
    found = red.files_containing([*keys, *texts])
    # Red keeps [p]set api tokens in its core Config: that is where they are meant to be.
    red_tokens = str(red.data_path / "core" / "settings.json")
    assert found == {red_tokens: [SET_KEYS["openai"]]}
    assert (red.data_path / "cogs" / "Loopflow" / "settings.json").exists()  # read, and clean

    # Keys in messages: only the owner's own !set api messages, and Red deleted those.
    shown = [m for m in discord.messages() if any(key in m.content for key in keys)]
    assert shown == []
    own = [m for m in discord.messages(include_deleted=True) if SET_KEYS["openai"] in m.content]
    assert own and all(m.deleted and m.author.id == discord.owner.id for m in own)
