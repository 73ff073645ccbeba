"""The fake LLM server itself (``tests/fake_llm.py``): the three ways to run it, and that it
refuses what the real APIs refuse (``tests/fake_llm_checks.py``), so a test that passes
against it would not be refused in production."""

from __future__ import annotations

import asyncio
import sys

import aiohttp
import fake_llm
import pytest
from adapter_wires import WIRES, collect

from loopflow.providers.openai import OpenAIProvider

OPENAI = WIRES["openai"]


async def test_fake_server_in_a_thread_driven_over_control_endpoints():
    with fake_llm.start_in_thread() as handle:
        provider = OpenAIProvider(
            api_key=OPENAI.key, base_url=handle.base_url + "/v1", max_retries=0
        )
        async with aiohttp.ClientSession(handle.base_url) as http:
            await http.post("/_control/enqueue", json=[{"kind": "reply", "text": "from control"}])
            chunks = await collect(provider, OPENAI.request(), stream=True)
            recorded = await (await http.get("/_control/requests")).json()
            await http.post("/_control/reset")
            after_reset = await (await http.get("/_control/requests")).json()
        await provider.aclose()
    assert "".join(c.text for c in chunks) == "from control"
    assert recorded[0]["path"] == "/v1/chat/completions"
    assert recorded[0]["json"]["messages"][-1] == {"role": "user", "content": "Alice: hello"}
    assert recorded[0]["outcome"] == "complete"
    assert after_reset == []


async def test_a_gate_opens_over_the_control_endpoint():
    with fake_llm.start_in_thread() as handle:
        provider = OPENAI.build(handle.server, max_retries=0)
        async with aiohttp.ClientSession(handle.base_url) as http:
            gated = {"kind": "reply", "text": "after the gate", "gate": "g"}
            await http.post("/_control/enqueue", json=[gated])
            reply = asyncio.ensure_future(collect(provider, OPENAI.request(), stream=True))
            await handle.wait_for_requests(1)
            assert not reply.done()  # held at the gate
            await http.post("/_control/release", json={"gate": "g"})
            chunks = await asyncio.wait_for(reply, 5)
        await provider.aclose()
    assert "".join(c.text for c in chunks) == "after the gate"


async def test_fake_server_as_a_process_with_a_fixed_reply():
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        fake_llm.__file__,
        "--port",
        "0",
        "--reply",
        "fixed reply",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 15)).decode()
        assert line.startswith("FAKE_LLM_URL=http://127.0.0.1:")
        url = line.split("=", 1)[1].strip() + "/v1"
        provider = OpenAIProvider(api_key=OPENAI.key, base_url=url)
        chunks = await collect(provider, OPENAI.request(), stream=False)
        await provider.aclose()
    finally:
        process.terminate()
        await process.wait()
    assert chunks[0].text == "fixed reply"
    assert process.returncode == 0


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "words"),
    [
        ("/v1/chat/completions", {}, {"model": "gpt-4o", "messages": []}, 401, "API key"),
        (
            "/v1/chat/completions",
            {"authorization": "Bearer k"},
            {"model": "o3-mini", "messages": [], "max_tokens": 5},
            400,
            "Use 'max_completion_tokens' instead",
        ),
        (
            "/v1/chat/completions",
            {"authorization": "Bearer k"},
            {"model": "gpt-5", "messages": [], "temperature": 0.5},
            400,
            "Only the default (1) value is supported",
        ),
        (
            "/v1/chat/completions",
            {"authorization": "Bearer k"},
            {"model": "gpt-4o", "messages": [{"role": "user", "content": None}]},
            400,
            "got null",
        ),
        ("/v1/messages", {}, {"model": "c", "max_tokens": 5, "messages": []}, 401, "x-api-key"),
        (
            "/v1/messages",
            {"x-api-key": "k"},
            {"model": "c", "max_tokens": 5, "messages": [{"role": "assistant", "content": "a"}]},
            400,
            'first message must use the "user" role',
        ),
        (
            "/v1/messages",
            {"x-api-key": "k"},
            {
                "model": "c",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
            },
            400,
            "roles must alternate",
        ),
        (
            "/v1/messages",
            {"x-api-key": "k"},
            {"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": " "}]},
            400,
            "non-empty content",
        ),
    ],
)
async def test_the_fake_refuses_what_the_real_api_refuses(
    llm_server, path, headers, body, status, words
):
    async with aiohttp.ClientSession(llm_server.base_url) as http:
        async with http.post(path, json=body, headers=headers) as response:
            payload = await response.json()
    assert response.status == status
    assert words in payload["error"]["message"]
