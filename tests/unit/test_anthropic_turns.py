"""to_anthropic_messages: the neutral history as Anthropic's alternating turns."""

from __future__ import annotations

from loopflow.providers.anthropic import LEADING_USER_PLACEHOLDER, to_anthropic_messages
from loopflow.providers.base import Message


def test_alternating_history_is_unchanged():
    history = [
        Message("user", "Alice: hi"),
        Message("assistant", "Hello!"),
        Message("user", "Alice: bye"),
    ]
    assert to_anthropic_messages(history) == [
        {"role": "user", "content": "Alice: hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Alice: bye"},
    ]


def test_consecutive_same_role_turns_merge_with_a_blank_line():
    history = [
        Message("user", "Alice: hi"),
        Message("user", "Bob: hey"),
        Message("assistant", "Hello both."),
        Message("assistant", "What's up?"),
    ]
    assert to_anthropic_messages(history) == [
        {"role": "user", "content": "Alice: hi\n\nBob: hey"},
        {"role": "assistant", "content": "Hello both.\n\nWhat's up?"},
    ]


def test_history_starting_with_the_mate_gets_a_placeholder_user_turn():
    history = [
        Message("assistant", "I'm Merlin."),
        Message("assistant", "Ask me anything."),
        Message("user", "Alice: why is the sky blue?"),
    ]
    assert to_anthropic_messages(history) == [
        {"role": "user", "content": LEADING_USER_PLACEHOLDER},
        {"role": "assistant", "content": "I'm Merlin.\n\nAsk me anything."},
        {"role": "user", "content": "Alice: why is the sky blue?"},
    ]


def test_images_are_url_blocks_before_the_merged_text():
    history = [
        Message("user", "Alice: see", images=("https://x/a.png",)),
        Message("user", "Bob: and", images=("https://x/b.png",)),
    ]
    assert to_anthropic_messages(history) == [
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "url", "url": "https://x/a.png"}},
                {"type": "image", "source": {"type": "url", "url": "https://x/b.png"}},
                {"type": "text", "text": "Alice: see\n\nBob: and"},
            ],
        }
    ]


def test_data_urls_become_base64_sources_and_image_only_turns_have_no_text_block():
    history = [Message("user", "", images=("data:image/png;base64,iVBOR",))]
    assert to_anthropic_messages(history) == [
        {
            "role": "user",
            "content": [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"},
                },
            ],
        }
    ]


def test_empty_messages_are_skipped_and_do_not_split_a_merge():
    history = [Message("user", "Alice: a"), Message("assistant", "  "), Message("user", "Alice: b")]
    assert to_anthropic_messages(history) == [
        {"role": "user", "content": "Alice: a\n\nAlice: b"},
    ]


def test_empty_history_stays_empty():
    assert to_anthropic_messages([]) == []
