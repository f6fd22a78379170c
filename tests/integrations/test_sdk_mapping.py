"""SDK helpers: events built from the REAL SDK types (docs/sending-events.md#what-the-helpers-map).

Non-streamed responses are the SDKs' own pydantic models (model_validate); streams go
through the real SDK clients against a local fake server speaking each provider's SSE, so
the chunks are exactly what an app iterates.
"""

import json
import math

import anthropic
import openai
import pytest
from anthropic.types import Message
from google import genai
from google.genai import types as genai_types
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

import costwatch_client
from costwatch_client import (
    event_from_response,
    from_anthropic_message,
    from_google_genai,
    from_openai_chat,
    from_openai_response,
)
from tests.integrations.sse import chat_chunk, sse

TOKEN_FIELDS = ("input_tokens", "cached_input_tokens", "cache_write_input_tokens", "output_tokens", "reasoning_tokens")


def tokens(event):
    return {name: event[name] for name in TOKEN_FIELDS}


def chat_completion(**overrides):
    body = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1764000000, "model": "gpt-5-mini-2025-08-07",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Refund."}}],
        "usage": {"prompt_tokens": 1500, "completion_tokens": 420, "total_tokens": 1920,
                  "prompt_tokens_details": {"cached_tokens": 1024},
                  "completion_tokens_details": {"reasoning_tokens": 256}},
    }
    body.update(overrides)
    return ChatCompletion.model_validate(body)


# --- OpenAI chat completions -------------------------------------------------------------------
def test_it_maps_an_openai_chat_completion_with_cached_and_reasoning_tokens():
    response = chat_completion(service_tier="flex")

    event = from_openai_chat(response, request_kwargs={"model": "gpt-5-mini", "max_completion_tokens": 2048},
                             feature="ticket-triage", role="triage")

    assert tokens(event) == {"input_tokens": 1500, "cached_input_tokens": 1024, "cache_write_input_tokens": 0,
                             "output_tokens": 420, "reasoning_tokens": 256}
    assert event["model"] == "gpt-5-mini-2025-08-07"  # as the provider reports it
    assert event["provider"] == "openai"
    assert event["max_output_tokens"] == 2048
    assert event["finish_reason"] == "stop"
    assert event["service_tier"] == "flex"
    assert (event["feature"], event["role"]) == ("ticket-triage", "triage")


def test_it_takes_the_cap_from_max_tokens_when_max_completion_tokens_is_absent():
    response = chat_completion(choices=[
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "a"}},
        {"index": 1, "finish_reason": "length", "message": {"role": "assistant", "content": "b"}},
    ])

    event = from_openai_chat(response, request_kwargs={"max_tokens": 300})

    assert event["max_output_tokens"] == 300
    assert event["finish_reason"] == "length"  # one truncated choice means the cap was hit
    assert "service_tier" not in event


def test_it_leaves_the_cap_out_when_the_request_set_none():
    event = from_openai_chat(chat_completion(), request_kwargs={"model": "gpt-5-mini"})

    assert "max_output_tokens" not in event  # absent = no cap for the events API


def test_it_maps_tool_calls_as_the_finish_reason():
    response = chat_completion(choices=[{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]}}])

    assert from_openai_chat(response)["finish_reason"] == "tool_calls"


# --- OpenAI Responses API ------------------------------------------------------------------------
def responses_body(**overrides):
    body = {
        "id": "resp_1", "object": "response", "created_at": 1764000000, "model": "gpt-5-2025-08-07",
        "status": "completed", "output": [], "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
        "max_output_tokens": 4096,
        "usage": {"input_tokens": 3000, "input_tokens_details": {"cached_tokens": 2048, "cache_write_tokens": 512},
                  "output_tokens": 900, "output_tokens_details": {"reasoning_tokens": 700}, "total_tokens": 3900},
    }
    body.update(overrides)
    return body


def test_it_maps_an_openai_response_with_its_own_cap():
    event = from_openai_response(Response.model_validate(responses_body()), feature="search-rank")

    assert tokens(event) == {"input_tokens": 3000, "cached_input_tokens": 2048, "cache_write_input_tokens": 512,
                             "output_tokens": 900, "reasoning_tokens": 700}
    assert (event["model"], event["provider"]) == ("gpt-5-2025-08-07", "openai")
    assert event["max_output_tokens"] == 4096
    assert event["finish_reason"] == "stop"
    assert event["feature"] == "search-rank"


def test_it_maps_an_incomplete_response_for_max_tokens_to_length():
    response = Response.model_validate(responses_body(
        status="incomplete", incomplete_details={"reason": "max_output_tokens"}, max_output_tokens=None))

    event = from_openai_response(response, request_kwargs={"max_output_tokens": 900})

    assert event["finish_reason"] == "length"
    assert event["max_output_tokens"] == 900  # the request's cap when the response does not echo one


def test_it_maps_an_incomplete_response_for_content_filter_to_content_filter():
    response = Response.model_validate(responses_body(status="incomplete",
                                                      incomplete_details={"reason": "content_filter"}))

    assert from_openai_response(response)["finish_reason"] == "content_filter"


# --- Anthropic ---------------------------------------------------------------------------------------
def anthropic_message(**overrides):
    body = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Here is the summary."}], "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 40, "output_tokens": 512, "cache_read_input_tokens": 3000,
                  "cache_creation_input_tokens": 1200, "output_tokens_details": {"thinking_tokens": 200},
                  "service_tier": "priority"},
    }
    body.update(overrides)
    return Message.model_validate(body)


def test_it_adds_anthropic_cache_reads_and_writes_to_input_tokens():
    event = from_anthropic_message(anthropic_message(), request_kwargs={"max_tokens": 1024})

    # Anthropic's input_tokens excludes the cache; the events API wants all input.
    assert tokens(event) == {"input_tokens": 40 + 3000 + 1200, "cached_input_tokens": 3000,
                             "cache_write_input_tokens": 1200, "output_tokens": 512, "reasoning_tokens": 200}
    assert (event["model"], event["provider"]) == ("claude-sonnet-4-5-20250929", "anthropic")
    assert event["max_output_tokens"] == 1024
    assert event["finish_reason"] == "stop"
    assert event["service_tier"] == "priority"


def test_it_maps_anthropic_max_tokens_stop_reason_to_length():
    message = anthropic_message(stop_reason="max_tokens",
                                usage={"input_tokens": 900, "output_tokens": 256})

    event = from_anthropic_message(message, request_kwargs={"max_tokens": 256})

    assert event["finish_reason"] == "length"
    assert tokens(event) == {"input_tokens": 900, "cached_input_tokens": 0, "cache_write_input_tokens": 0,
                             "output_tokens": 256, "reasoning_tokens": 0}
    assert event["max_output_tokens"] == 256
    assert from_anthropic_message(anthropic_message(stop_reason="tool_use"))["finish_reason"] == "tool_calls"


# --- Google genai ----------------------------------------------------------------------------------------
def google_response(**overrides):
    body = {
        "candidates": [{"finish_reason": "STOP", "content": {"role": "model", "parts": [{"text": "ok"}]}}],
        "usage_metadata": {"prompt_token_count": 5000, "cached_content_token_count": 4096,
                           "candidates_token_count": 300, "thoughts_token_count": 1200, "total_token_count": 6500},
        "model_version": "gemini-2.5-pro",
    }
    body.update(overrides)
    return genai_types.GenerateContentResponse.model_validate(body)


def test_it_counts_google_thoughts_as_output_and_reasoning():
    config = genai_types.GenerateContentConfig(max_output_tokens=2048)

    event = from_google_genai(google_response(), request_kwargs={"model": "gemini-2.5-pro", "config": config})

    assert tokens(event) == {"input_tokens": 5000, "cached_input_tokens": 4096, "cache_write_input_tokens": 0,
                             "output_tokens": 300 + 1200, "reasoning_tokens": 1200}
    assert (event["model"], event["provider"]) == ("gemini-2.5-pro", "google")
    assert event["max_output_tokens"] == 2048
    assert event["finish_reason"] == "stop"


def test_it_maps_google_max_tokens_to_length_and_reads_a_dict_config():
    response = google_response(candidates=[{"finish_reason": "MAX_TOKENS",
                                            "content": {"role": "model", "parts": [{"text": "cut"}]}}])

    event = from_google_genai(response, request_kwargs={"config": {"max_output_tokens": 64}})

    assert event["finish_reason"] == "length"
    assert event["max_output_tokens"] == 64


def test_it_maps_a_google_function_call_to_tool_calls():
    response = google_response(candidates=[{"finish_reason": "STOP", "content": {"role": "model", "parts": [
        {"function_call": {"name": "lookup", "args": {"id": 1}}}]}}])

    assert from_google_genai(response)["finish_reason"] == "tool_calls"


# --- dispatch ----------------------------------------------------------------------------------------------
def test_it_picks_the_helper_by_response_type():
    assert event_from_response(chat_completion())["input_tokens"] == 1500
    assert event_from_response(Response.model_validate(responses_body()))["cache_write_input_tokens"] == 512
    assert event_from_response(anthropic_message())["input_tokens"] == 4240
    assert event_from_response(google_response())["output_tokens"] == 1500
    with pytest.raises(TypeError):
        event_from_response(object())


# --- streams through the real SDK clients -----------------------------------------------------------
def test_it_takes_openai_stream_usage_from_the_final_chunk(httpserver):
    usage = {"prompt_tokens": 800, "completion_tokens": 3, "total_tokens": 803,
             "prompt_tokens_details": {"cached_tokens": 512}, "completion_tokens_details": {"reasoning_tokens": 0}}
    body = sse([(None, chat_chunk("Hel")), (None, chat_chunk("lo")), (None, chat_chunk(finish="length")),
                (None, chat_chunk(usage=usage, choices=False)), (None, "[DONE]")])
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_data(
        body, content_type="text/event-stream")
    sdk = openai.OpenAI(base_url=httpserver.url_for("/v1"), api_key="sk-test")
    kwargs = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3,
              "stream": True, "stream_options": {"include_usage": True}}

    chunks = list(sdk.chat.completions.create(**kwargs))
    event = event_from_response(chunks, request_kwargs=kwargs, feature="chat")

    assert tokens(event) == {"input_tokens": 800, "cached_input_tokens": 512, "cache_write_input_tokens": 0,
                             "output_tokens": 3, "reasoning_tokens": 0}
    assert (event["model"], event["max_output_tokens"], event["finish_reason"]) == (
        "gpt-5-mini-2025-08-07", 3, "length")
    assert "attributes" not in event


def test_it_estimates_an_openai_stream_without_usage_and_marks_it(httpserver):
    pieces = ["The ", "refund ", "policy ", "allows ", "thirty ", "days."]
    body = sse([(None, chat_chunk(p)) for p in pieces] + [(None, chat_chunk(finish="stop")), (None, "[DONE]")])
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_data(
        body, content_type="text/event-stream")
    sdk = openai.OpenAI(base_url=httpserver.url_for("/v1"), api_key="sk-test")
    prompt = "Summarise our refund policy for a customer in one sentence please."
    kwargs = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": prompt}], "stream": True}

    event = event_from_response(list(sdk.chat.completions.create(**kwargs)), request_kwargs=kwargs)

    assert event["attributes"] == {"usage_estimated": True}
    # At least one token per content chunk, ~4 characters a token: never zero.
    assert event["output_tokens"] == max(len(pieces), math.ceil(len("".join(pieces)) / 4))
    assert event["input_tokens"] >= len(prompt) // 4  # counted from the request's messages
    assert event["finish_reason"] == "stop"


def test_it_takes_openai_responses_stream_usage_from_the_completed_event(httpserver):
    final = responses_body(status="incomplete", incomplete_details={"reason": "max_output_tokens"})
    body = sse([
        ("response.created", {"type": "response.created", "sequence_number": 0,
                              "response": responses_body(status="in_progress", usage=None)}),
        ("response.output_text.delta", {"type": "response.output_text.delta", "sequence_number": 1,
                                        "item_id": "m1", "output_index": 0, "content_index": 0, "delta": "Hi",
                                        "logprobs": []}),
        ("response.incomplete", {"type": "response.incomplete", "sequence_number": 2, "response": final}),
    ])
    httpserver.expect_request("/v1/responses", method="POST").respond_with_data(body, content_type="text/event-stream")
    sdk = openai.OpenAI(base_url=httpserver.url_for("/v1"), api_key="sk-test")

    events = list(sdk.responses.create(model="gpt-5", input="hi", max_output_tokens=4096, stream=True))
    event = event_from_response(events)

    assert tokens(event) == {"input_tokens": 3000, "cached_input_tokens": 2048, "cache_write_input_tokens": 512,
                             "output_tokens": 900, "reasoning_tokens": 700}
    assert (event["finish_reason"], event["max_output_tokens"]) == ("length", 4096)


def anthropic_stream_body(*, with_delta_usage=True):
    start = {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001", "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 2000,
                  "cache_creation_input_tokens": 100}}}
    events = [
        ("message_start", start),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "A long answer that was cut"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ]
    if with_delta_usage:
        events += [("message_delta", {"type": "message_delta",
                                      "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
                                      "usage": {"output_tokens": 64}}),
                   ("message_stop", {"type": "message_stop"})]
    return sse(events)


def test_it_takes_anthropic_stream_usage_from_message_start_and_message_delta(httpserver):
    httpserver.expect_request("/v1/messages", method="POST").respond_with_data(
        anthropic_stream_body(), content_type="text/event-stream")
    sdk = anthropic.Anthropic(base_url=httpserver.url_for(""), api_key="sk-ant-test")
    kwargs = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}],
              "stream": True}

    event = event_from_response(list(sdk.messages.create(**kwargs)), request_kwargs=kwargs)

    assert tokens(event) == {"input_tokens": 25 + 2000 + 100, "cached_input_tokens": 2000,
                             "cache_write_input_tokens": 100, "output_tokens": 64, "reasoning_tokens": 0}
    assert (event["model"], event["provider"]) == ("claude-haiku-4-5-20251001", "anthropic")
    assert (event["finish_reason"], event["max_output_tokens"]) == ("length", 64)
    assert "attributes" not in event


def test_it_estimates_an_anthropic_stream_cut_before_message_delta(httpserver):
    httpserver.expect_request("/v1/messages", method="POST").respond_with_data(
        anthropic_stream_body(with_delta_usage=False), content_type="text/event-stream")
    sdk = anthropic.Anthropic(base_url=httpserver.url_for(""), api_key="sk-ant-test")

    event = event_from_response(list(sdk.messages.create(
        model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}], stream=True)))

    assert event["attributes"] == {"usage_estimated": True}
    assert event["input_tokens"] == 2125  # message_start's input counts are exact
    assert event["output_tokens"] == math.ceil(len("A long answer that was cut") / 4)  # not the placeholder 1


def google_stream_body():
    def chunk(text, finish=None, candidates_tokens=None):
        candidate = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        usage = {"promptTokenCount": 700, "cachedContentTokenCount": 600, "thoughtsTokenCount": 40,
                 "totalTokenCount": 700 + 40 + (candidates_tokens or 0)}
        if candidates_tokens is not None:
            usage["candidatesTokenCount"] = candidates_tokens
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-2.5-flash"}
    return "".join(f"data: {json.dumps(c)}\r\n\r\n" for c in (
        chunk("Hel", candidates_tokens=2), chunk("lo", candidates_tokens=5), chunk("!", "MAX_TOKENS", 9)))


def test_it_takes_google_stream_usage_from_the_last_chunk(httpserver):
    httpserver.expect_request("/v1/models/gemini-2.5-flash:streamGenerateContent", method="POST") \
        .respond_with_data(google_stream_body(), content_type="text/event-stream")
    sdk = genai.Client(api_key="test", http_options=genai_types.HttpOptions(base_url=httpserver.url_for("")))
    kwargs = {"model": "gemini-2.5-flash", "contents": "hi",
              "config": genai_types.GenerateContentConfig(max_output_tokens=50)}

    event = event_from_response(list(sdk.models.generate_content_stream(**kwargs)), request_kwargs=kwargs)

    assert tokens(event) == {"input_tokens": 700, "cached_input_tokens": 600, "cache_write_input_tokens": 0,
                             "output_tokens": 9 + 40, "reasoning_tokens": 40}
    assert (event["model"], event["provider"]) == ("gemini-2.5-flash", "google")
    assert (event["finish_reason"], event["max_output_tokens"]) == ("length", 50)


def test_the_helpers_do_not_import_any_sdk():
    import subprocess
    import sys

    code = ("import sys, costwatch_client; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('openai', 'anthropic', 'google', 'django')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert costwatch_client.__version__


def test_it_skips_the_sdks_not_given_sentinels_when_looking_for_the_cap():
    kwargs = {"model": "gpt-5-mini", "max_completion_tokens": openai.NOT_GIVEN, "max_tokens": 200}

    assert from_openai_chat(chat_completion(), request_kwargs=kwargs)["max_output_tokens"] == 200
    assert "max_output_tokens" not in from_anthropic_message(anthropic_message(),
                                                             request_kwargs={"max_tokens": anthropic.NOT_GIVEN})
