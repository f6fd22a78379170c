"""The Python client against the REAL events API: a live Django server, a real ingest key,
rows asserted in PostgreSQL field by field."""

import random
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import openai
import pytest
from anthropic.types import Message
from google.genai import types as genai_types
from openai.types.chat import ChatCompletion
from werkzeug import Response

from costwatch.projects.services import api_key_issue
from costwatch_client import Client, track
from ingest.models import Event
from tests.conftest import run_coroutine, wait_for
from tests.integrations.sse import chat_chunk, sse

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ingest_key(project):
    return api_key_issue(project=project, scopes=["ingest"]).plaintext


@pytest.fixture
def make_client(live_server, ingest_key):
    clients = []

    def make(base_url=None, **options):
        options = {"flush_interval": 0.05, "backoff_base": 0.01, "backoff_max": 0.05, **options}
        client = Client(api_key=ingest_key, base_url=base_url or live_server.url, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=2)


def stored(project):
    return {event.event_id: event for event in Event.objects.filter(project=project).select_related("feature")}


def test_events_recorded_with_the_client_are_stored_field_by_field(project, make_client):
    client = make_client(environment="staging")
    chat = ChatCompletion.model_validate({
        "id": "c", "object": "chat.completion", "created": 1764000000, "model": "gpt-5-mini-2025-08-07",
        "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "x"}}],
        "usage": {"prompt_tokens": 1500, "completion_tokens": 256, "total_tokens": 1756,
                  "prompt_tokens_details": {"cached_tokens": 1024},
                  "completion_tokens_details": {"reasoning_tokens": 200}}})
    message = Message.model_validate({
        "id": "m", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "stop_reason": "end_turn",
        "content": [{"type": "text", "text": "ok"}], "stop_sequence": None,
        "usage": {"input_tokens": 30, "output_tokens": 80, "cache_read_input_tokens": 2000,
                  "cache_creation_input_tokens": 400}})
    gemini = genai_types.GenerateContentResponse.model_validate({
        "candidates": [{"finish_reason": "STOP", "content": {"role": "model", "parts": [{"text": "y"}]}}],
        "model_version": "gemini-2.5-flash",
        "usage_metadata": {"prompt_token_count": 600, "cached_content_token_count": 512,
                           "candidates_token_count": 70, "thoughts_token_count": 30}})
    when = datetime.now(UTC) - timedelta(minutes=5)

    with track(feature="ticket-triage", request_id="req-42", attributes={"customer": "acme"}):
        chat_id = client.record(chat, request_kwargs={"max_completion_tokens": 256}, role="triage",
                                route_reason="simple", latency_ms=812)
        claude_id = client.record(message, request_kwargs={"max_tokens": 1024}, role="escalation",
                                  parent_event_id=chat_id, confidence=0.42, quality=0.9)
    gemini_id = client.record(gemini, request_kwargs={"config": {"max_output_tokens": 100}}, feature="search-rank")
    plain_id = client.send({"event_id": "plain-1", "timestamp": when, "feature": "search-rank", "model": "my-model",
                            "input_tokens": 10, "output_tokens": 5, "cost_usd": Decimal("0.0125"),
                            "status": "error"})

    assert client.flush(timeout=20) is True
    rows = stored(project)
    assert set(rows) == {chat_id, claude_id, gemini_id, "plain-1"} and plain_id == "plain-1"
    chat_row, claude_row, gemini_row, plain_row = (rows[i] for i in (chat_id, claude_id, gemini_id, "plain-1"))
    assert (chat_row.feature.name, chat_row.model, chat_row.provider, chat_row.environment) == (
        "ticket-triage", "gpt-5-mini-2025-08-07", "openai", "staging")
    assert (chat_row.input_tokens, chat_row.cached_input_tokens, chat_row.cache_write_input_tokens,
            chat_row.output_tokens, chat_row.reasoning_tokens) == (1500, 1024, 0, 256, 200)
    assert (chat_row.max_output_tokens, chat_row.cap_known, chat_row.finish_reason) == (256, True, "length")
    assert (chat_row.role, chat_row.request_id, chat_row.route_reason, chat_row.latency_ms) == (
        "triage", "req-42", "simple", 812)
    assert chat_row.attributes == {"customer": "acme"}
    assert (claude_row.input_tokens, claude_row.cached_input_tokens, claude_row.cache_write_input_tokens,
            claude_row.output_tokens) == (30 + 2000 + 400, 2000, 400, 80)
    assert (claude_row.role, claude_row.parent_event_id, claude_row.confidence, claude_row.quality) == (
        "escalation", chat_id, 0.42, 0.9)
    assert (claude_row.max_output_tokens, claude_row.finish_reason, claude_row.request_id) == (1024, "stop", "req-42")
    assert claude_row.latency_ms is not None  # measured by track()
    assert (gemini_row.feature.name, gemini_row.provider, gemini_row.input_tokens, gemini_row.cached_input_tokens,
            gemini_row.output_tokens, gemini_row.reasoning_tokens, gemini_row.max_output_tokens) == (
        "search-rank", "google", 600, 512, 100, 30, 100)
    assert gemini_row.request_id == ""  # outside the track() block
    assert plain_row.ts == when
    assert (plain_row.status, plain_row.client_cost_usd, plain_row.max_output_tokens, plain_row.cap_known) == (
        "error", Decimal("0.0125"), None, True)
    assert client.stats()["sent"] == 4 and client.stats()["failed"] == 0


def test_a_retry_after_a_lost_response_is_stored_once(project, make_client, live_server, httpserver, ingest_key):
    """The server commits the batch but the client never sees the answer (a 502 from a proxy in
    between): the client retries the same event_ids and the events API counts them as duplicates."""
    forwarded = []

    def lossy_proxy(request):
        upstream = urllib.request.Request(f"{live_server.url}/api/v1/events", data=request.get_data(),
                                          headers={"Authorization": request.headers["Authorization"],
                                                   "Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(upstream, timeout=10) as answer:
            body = answer.read()
        forwarded.append(body)
        if len(forwarded) == 1:
            return Response("bad gateway", status=502)
        return Response(body, status=200, content_type="application/json")

    httpserver.expect_request("/api/v1/events", method="POST").respond_with_handler(lossy_proxy)
    client = make_client(base_url=httpserver.url_for("/").rstrip("/"))

    ids = [client.send({"feature": "search-rank", "model": "gpt-5-mini", "input_tokens": n, "output_tokens": 1})
           for n in range(1, 4)]

    assert client.flush(timeout=20) is True
    assert len(forwarded) == 2
    assert sorted(stored(project)) == sorted(ids)  # three rows, not six
    assert sorted(e.input_tokens for e in stored(project).values()) == [1, 2, 3]
    assert client.stats()["sent"] == 3 and client.stats()["duplicates"] == 3 and client.stats()["retried"] == 1


def test_it_counts_a_rejected_event_and_keeps_the_good_ones(project, make_client):
    client = make_client(gzip=True)

    good = client.send({"feature": "search-rank", "model": "gpt-5-mini", "input_tokens": 10, "output_tokens": 2})
    client.send({"feature": "search/rank", "model": "gpt-5-mini", "input_tokens": 10, "output_tokens": -2})

    assert client.flush(timeout=20) is True
    assert list(stored(project)) == [good]
    stats = client.stats()
    assert (stats["sent"], stats["rejected"], stats["failed"], stats["retried"]) == (1, 1, 0, 0)


def test_a_revoked_key_fails_without_retrying(project, live_server):
    client = Client(api_key="cw_nosuchkey_" + "x" * 30, base_url=live_server.url, flush_interval=0.05,
                    backoff_base=0.01)

    client.send({"feature": "search-rank", "model": "gpt-5-mini", "input_tokens": 1, "output_tokens": 1})

    assert client.flush(timeout=20) is True
    assert client.stats()["failed"] == 1 and client.stats()["retried"] == 0
    assert not Event.objects.filter(project=project).exists()
    client.close(timeout=1)


def test_one_line_call_records_a_real_openai_stream(project, make_client, httpserver):
    """`cw.call(create, ...)` times the call, passes the stream through and records it at the end."""
    usage = {"prompt_tokens": 90, "completion_tokens": 2, "total_tokens": 92}
    body = sse([(None, chat_chunk("Hi")), (None, chat_chunk("!", finish="stop")),
                (None, chat_chunk(usage=usage, choices=False)), (None, "[DONE]")])
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_data(
        body, content_type="text/event-stream")
    sdk = openai.OpenAI(base_url=httpserver.url_for("/v1"), api_key="sk-test")
    client = make_client()

    stream = client.call(sdk.chat.completions.create, model="gpt-5-mini", messages=[{"role": "user", "content": "hi"}],
                         max_completion_tokens=64, stream=True, stream_options={"include_usage": True},
                         costwatch={"feature": "chat-stream", "role": "primary"})
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    assert text == "Hi!"
    assert client.flush(timeout=20) is True
    (row,) = stored(project).values()
    assert row.event_id == stream.event_id
    assert (row.feature.name, row.model, row.input_tokens, row.output_tokens, row.max_output_tokens,
            row.finish_reason) == ("chat-stream", "gpt-5-mini-2025-08-07", 90, 2, 64, "stop")
    assert row.latency_ms is not None and row.ttft_ms is not None and row.ttft_ms <= row.latency_ms
    assert row.attributes == {}


def test_async_call_records_an_async_openai_completion(project, make_client, httpserver):
    completion = {"id": "c", "object": "chat.completion", "created": 1764000000, "model": "gpt-5-nano-2025-08-07",
                  "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
                  "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_json(completion)
    sdk = openai.AsyncOpenAI(base_url=httpserver.url_for("/v1"), api_key="sk-test")
    client = make_client()

    async def handler():
        async with track(feature="async-triage", role="triage"):
            return await client.acall(sdk.chat.completions.create, model="gpt-5-nano", max_completion_tokens=16,
                                      messages=[{"role": "user", "content": "hi"}])

    response = run_coroutine(handler())

    assert response.choices[0].message.content == "ok"
    assert client.flush(timeout=20) is True
    (row,) = stored(project).values()
    assert (row.feature.name, row.role, row.model, row.input_tokens, row.output_tokens, row.max_output_tokens) == (
        "async-triage", "triage", "gpt-5-nano-2025-08-07", 12, 3, 16)


def test_a_shadowed_call_and_its_judge_scores_reach_the_real_scores_api(project, make_client):
    """shadow= end to end: the Lite row, its role=shadow row pointing at it, and both qualities
    set through POST /api/v1/scores; a score sent before its event is retried until it is stored."""
    client = make_client(score_not_found_backoff=0.2)
    client.shadows.rng = random.Random(1)
    replay = random.Random(1)  # how many calls go unsampled before the first sampled one
    draws = 0
    while replay.random() >= 0.2:
        draws += 1

    def chat(model, text):
        return {"id": "c", "object": "chat.completion", "created": 1764000000, "model": model,
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}}

    spec = {"call": lambda: chat("gpt-5", "pro"), "rate": 0.2, "judge": lambda lite, pro: (0.6, 0.9)}
    for _ in range(draws):  # not sampled
        client.record(chat("gpt-5-mini", "lite"), feature="answers", shadow=spec)
    lite_id = client.record(chat("gpt-5-mini", "lite"), feature="answers", request_id="req-7", shadow=spec)
    assert client.shadows.join(timeout=20) and client.flush(timeout=30)

    rows = stored(project)
    shadow = [row for row in rows.values() if row.role == "shadow"]
    assert len(rows) == draws + 2 and len(shadow) == 1
    assert (shadow[0].parent_event_id, shadow[0].request_id, shadow[0].feature.name) == (lite_id, "req-7", "answers")
    assert (rows[lite_id].quality, shadow[0].quality) == (0.6, 0.9)

    early = "evt-scored-before-it-was-sent"
    client.score(early, 0.25, source="thumbs")
    wait_for(lambda: client.stats()["scores"]["not_found_retried"] >= 1, message="a not_found answer")
    client.send({"event_id": early, "feature": "answers", "model": "gpt-5-mini", "input_tokens": 1,
                 "output_tokens": 1})
    assert client.flush(timeout=30)
    assert Event.objects.get(project=project, event_id=early).quality == 0.25
    scores = client.stats()["scores"]
    assert (scores["sent"], scores["failed"], scores["rejected"]) == (3, 0, 0)
