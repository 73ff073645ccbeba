"""Today's models and gateways, through the real SDKs against the fake server.

Reasoning models that refuse parameters, gateways that end a stream their own way,
reasoning text, empty completions and Anthropic's temperature range: parametrised over
both adapters (``wire``, see ``conftest.py``) where both can meet the case. What every
request relies on (replies, usage, errors) is ``test_adapter_contract.py``'s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import fake_llm
import pytest
from adapter_wires import WIRES, Wire, collect
from fake_llm import FakeLLMServer

from loopflow import errors
from loopflow.io.session import Session, Turn
from loopflow.mates import Mate
from loopflow.providers.base import Chunk, Message, Request, Usage
from loopflow.providers.sdk import SDKProvider

MODELS = {name: wire.model for name, wire in WIRES.items()}


@pytest.fixture
async def provider(wire: Wire, llm_server: FakeLLMServer) -> AsyncIterator[SDKProvider[Any]]:
    """``wire``'s adapter without the SDK's retries: each request counted is loopflow's."""
    adapter = wire.build(llm_server, max_retries=0)
    yield adapter
    await adapter.aclose()


@pytest.fixture
async def openai_provider(llm_server: FakeLLMServer) -> AsyncIterator[SDKProvider[Any]]:
    adapter = WIRES["openai"].build(llm_server, max_retries=0)
    yield adapter
    await adapter.aclose()


@pytest.fixture
async def anthropic_provider(llm_server: FakeLLMServer) -> AsyncIterator[SDKProvider[Any]]:
    adapter = WIRES["anthropic"].build(llm_server, max_retries=0)
    yield adapter
    await adapter.aclose()


def request_for(provider: SDKProvider[Any], model: str = "", **kw: object) -> Request:
    return Request(  # type: ignore[arg-type]
        model=model or MODELS[provider.name],
        system="You are Maya.",
        messages=(Message("user", "Alice: hello"),),
        **kw,
    )


def text_of(chunks: list[Chunk]) -> str:
    return "".join(c.text for c in chunks)


# --- reasoning models and refused parameters ------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    "model", ["o3-mini", "o4-mini", "gpt-5-mini", "gpt-5", "gpt-6.2-sol", "gpt-6.2-astra",
              "gpt-6.1-terra", "gpt-6-luna", "gpt-6.1-sol-2026-09-29"]
)  # fmt: skip
async def test_known_reasoning_models_get_what_they_accept_on_any_host(
    openai_provider, llm_server, model, stream
):
    llm_server.enqueue(fake_llm.reply("Thought it through."))
    request = request_for(openai_provider, model, temperature=0.7, max_tokens=500)
    chunks = await collect(openai_provider, request, stream)
    assert text_of(chunks) == "Thought it through."
    (sent,) = llm_server.requests  # one request: nothing was refused
    assert "temperature" not in sent.json and "max_tokens" not in sent.json
    # The cap covers reasoning too, so it leaves room beyond the reply's 500 tokens.
    assert sent.json["max_completion_tokens"] > 500


@pytest.mark.parametrize("stream", [False, True])
async def test_an_unknown_model_that_refuses_parameters_is_retried_and_remembered(
    openai_provider, llm_server, stream
):
    llm_server.reasoning_models.add("azure-thinker")  # a deployment name: no family known
    request = request_for(openai_provider, "azure-thinker", temperature=0.7, max_tokens=300)
    llm_server.enqueue(fake_llm.reply("Made it."))
    assert text_of(await collect(openai_provider, request, stream)) == "Made it."
    first, second, third = (r.json for r in llm_server.requests)
    assert first["max_tokens"] == 300 and first["temperature"] == 0.7
    # "Use 'max_completion_tokens' instead": the named replacement.
    assert second["max_completion_tokens"] == 300 and "max_tokens" not in second
    assert second["temperature"] == 0.7
    assert "temperature" not in third and third["max_completion_tokens"] == 300
    # Remembered for this model: the next request is right the first time.
    llm_server.reset()
    assert text_of(await collect(openai_provider, request, stream)) == "echo: Alice: hello"
    (sent,) = llm_server.requests
    assert "temperature" not in sent.json and sent.json["max_completion_tokens"] == 300
    # Other models are not affected.
    llm_server.reset()
    await collect(openai_provider, request_for(openai_provider, temperature=0.7), stream)
    assert llm_server.requests[0].json["temperature"] == 0.7


async def test_a_gateways_own_wording_of_a_refused_parameter_is_understood(
    openai_provider, llm_server
):
    # LiteLLM's proxy answers a parameter its route cannot take like this.
    litellm = (
        "litellm.UnsupportedParamsError: openai does not support parameters: ['temperature'], "
        "for model=router-7. To drop these, set `litellm.drop_params=True`."
    )
    llm_server.enqueue(fake_llm.error(400, litellm), fake_llm.reply("Fine."))
    request = request_for(openai_provider, "router-7", temperature=0.2)
    assert text_of(await collect(openai_provider, request, True)) == "Fine."
    assert "temperature" not in llm_server.requests[1].json


async def test_a_parameter_refused_again_is_not_retried_forever(openai_provider, llm_server):
    refusal = fake_llm.error(
        400,
        "Unsupported parameter: 'top_logprobs' is not supported with this model.",
        code="unsupported_parameter",
        param="top_logprobs",  # not one loopflow sent: nothing to drop
    )
    llm_server.enqueue(refusal)
    with pytest.raises(errors.RequestError) as caught:
        await collect(openai_provider, request_for(openai_provider), False)
    assert len(llm_server.requests) == 1
    assert caught.value.reason.startswith("Unsupported parameter: 'top_logprobs'")


async def test_anthropic_refusing_a_parameter_is_retried_without_it(anthropic_provider, llm_server):
    provider = anthropic_provider
    both = "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
    llm_server.enqueue(fake_llm.error(400, both), fake_llm.reply("Only one, then."))
    request = request_for(provider, "claude-future", temperature=0.5)
    assert text_of(await collect(provider, request, True)) == "Only one, then."
    first, second = (r.json for r in llm_server.requests)
    assert first["temperature"] == 0.5 and "temperature" not in second


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    "model", ["claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-5-5", "claude-fable-5-2",
              "claude-opus-4-7", "claude-sonnet-5"]
)  # fmt: skip
async def test_claude_models_that_refuse_a_temperature_are_sent_none(
    anthropic_provider, llm_server, model, stream
):
    provider = anthropic_provider
    llm_server.enqueue(fake_llm.reply("Thought first.", reasoning="adaptive thinking"))
    request = request_for(provider, model, temperature=0.7, max_tokens=500)
    assert text_of(await collect(provider, request, stream)) == "Thought first."
    (sent,) = llm_server.requests  # accepted the first time
    assert "temperature" not in sent.json
    # Their thinking (adaptive, on by default) counts against max_tokens: room beyond 500.
    assert sent.json["max_tokens"] > 500


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-6"])
async def test_older_claude_models_still_get_their_temperature(
    anthropic_provider, llm_server, model
):
    provider = anthropic_provider
    request = request_for(provider, model, temperature=0.7, max_tokens=500)
    await collect(provider, request, True)
    (sent,) = llm_server.requests
    assert sent.json["temperature"] == 0.7 and sent.json["max_tokens"] == 500


async def test_an_unknown_claude_model_saying_temperature_is_deprecated_is_retried(
    anthropic_provider, llm_server
):
    provider = anthropic_provider
    deprecated = "`temperature` is deprecated for this model."
    llm_server.enqueue(fake_llm.error(400, deprecated), fake_llm.reply("Without it, then."))
    request = request_for(provider, "claude-nova-6", temperature=0.5)
    assert text_of(await collect(provider, request, True)) == "Without it, then."
    first, second = (r.json for r in llm_server.requests)
    assert first["temperature"] == 0.5 and "temperature" not in second
    # Remembered for that model.
    llm_server.reset()
    await collect(provider, request, False)
    assert "temperature" not in llm_server.requests[0].json


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_refuses_a_temperature_above_one(anthropic_provider, llm_server, stream):
    provider = anthropic_provider
    with pytest.raises(errors.RequestError) as caught:
        await collect(provider, request_for(provider, temperature=1.5), stream)
    assert caught.value.reason == "temperature: Input should be less than or equal to 1"
    assert len(llm_server.requests) == 1  # a range error is the mate's to fix, not retried


# --- gateways that end a stream their own way -------------------------------------------------


async def test_a_stream_ended_the_gateway_way_is_a_finished_reply(wire, provider, llm_server):
    llm_server.enqueue(fake_llm.reply("The whole reply, then usage.", ending="gateway"))
    chunks = await collect(provider, request_for(provider), True)
    assert text_of(chunks) == "The whole reply, then usage."
    assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens == 7
    assert chunks[-1].finish_reason == wire.finished


@pytest.mark.parametrize("stream", [False, True])
async def test_an_empty_finish_reason_is_no_finish_reason(openai_provider, llm_server, stream):
    llm_server.enqueue(fake_llm.reply("Done anyway.", finish=""))
    chunks = await collect(openai_provider, request_for(openai_provider), stream)
    assert text_of(chunks) == "Done anyway."
    assert chunks[-1].usage == Usage(6, 3)


# --- reasoning text -----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_think_blocks_never_reach_the_caller(provider, llm_server, stream):
    deltas = ["<thi", "nk>The user greets. I gr", "eet back.</th", "ink>\n\nHel", "lo!"]
    llm_server.enqueue(fake_llm.reply("".join(deltas), deltas=deltas))
    assert text_of(await collect(provider, request_for(provider), stream)) == "Hello!"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_fields_never_reach_the_caller(openai_provider, llm_server, stream, field):
    llm_server.enqueue(fake_llm.reply("Answer.", reasoning="secret plan", reasoning_field=field))
    assert text_of(await collect(openai_provider, request_for(openai_provider), stream)) == (
        "Answer."
    )


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_thinking_blocks_never_reach_the_caller(
    anthropic_provider, llm_server, stream
):
    provider = anthropic_provider
    llm_server.enqueue(fake_llm.reply("Answer.", reasoning="secret plan"))
    assert text_of(await collect(provider, request_for(provider), stream)) == "Answer."


@pytest.mark.parametrize("stream", [False, True])
async def test_a_thinking_model_whose_reply_starts_inside_the_block(
    openai_provider, llm_server, stream
):
    # R1's chat template opens the block in the prompt: the reply only closes it.
    reply = "They said hello. I should answer.\n</think>\n\nHello, Alice!"
    llm_server.enqueue(fake_llm.reply(reply))
    request = request_for(openai_provider, "deepseek-r1:14b")
    assert text_of(await collect(openai_provider, request, stream)) == "Hello, Alice!"


# --- empty completions, through the session -------------------------------------------------

MAYA = Mate(name="maya", display_name="Maya", system_prompt="You are Maya.")
HELLO = [Turn(speaker_id=1, display_name="Alice", text="hello")]


def session_for(provider: SDKProvider) -> Session:
    return Session({provider.name: provider}, models=MODELS)


@pytest.mark.parametrize("empty", ["", "  \n", "<think>nothing to add</think>"])
async def test_an_empty_completion_is_retried(provider, llm_server, empty):
    llm_server.enqueue(fake_llm.reply(empty), fake_llm.reply("Second try."))
    mate = MAYA.replace(provider=provider.name)
    reply = await session_for(provider).reply(mate, HELLO)
    assert reply.text == "Second try."
    assert len(llm_server.requests) == 2


async def test_empty_twice_is_an_empty_reply(provider, llm_server):
    llm_server.enqueue(fake_llm.reply(""), fake_llm.reply("<think>still nothing</think>"))
    stream = session_for(provider).stream(MAYA.replace(provider=provider.name), HELLO)
    with pytest.raises(errors.EmptyReplyError, match=r"^Maya had nothing to say\.$"):
        async for _ in stream:
            pass
    assert stream.reply is not None and stream.reply.usage.input_tokens > 0
