"""The client's sender against a real local HTTP server (pytest-httpserver): batching,
retries with backoff and Retry-After, permanent errors, the bounded queue, gzip, flush at exit.

The client against the REAL events API lives in test_client_live.py.
"""

import asyncio
import gzip
import json
import socket
import subprocess
import sys
import threading
import time

import pytest
from werkzeug import Response

from costwatch_client import Client, current_fields, retry_after_seconds, track
from tests.conftest import run_coroutine, wait_for

KEY = "cw_testkey_" + "s" * 32


class Recorder:
    """Answers each request with the next planned (status, body, headers) and keeps what it got."""

    def __init__(self, plan=None, default=None):
        self.plan = list(plan or [])
        self.default = default or (200, None, {})
        self.requests = []
        self.release = threading.Event()
        self.release.set()
        self.lock = threading.Lock()

    def __call__(self, request):
        raw = request.get_data()
        body = json.loads(gzip.decompress(raw) if request.headers.get("Content-Encoding") == "gzip" else raw)
        with self.lock:
            self.requests.append({"at": time.monotonic(), "headers": dict(request.headers), "body": body})
            status, payload, headers = self.plan.pop(0) if self.plan else self.default
        self.release.wait(30)
        if payload is None:
            n = len(body["events"])
            payload = {"accepted": n, "duplicates": 0, "rejected": 0, "errors": [], "warnings": []}
        return Response(json.dumps(payload), status=status, headers=headers, content_type="application/json")

    def event_ids(self, index):
        return [event["event_id"] for event in self.requests[index]["body"]["events"]]

    def all_events(self):
        return [event for request in self.requests for event in request["body"]["events"]]


def serve(httpserver, recorder):
    httpserver.expect_request("/api/v1/events", method="POST").respond_with_handler(recorder)
    return httpserver.url_for("/").rstrip("/")


def make_client(base_url, **options):
    options = {"flush_interval": 0.05, "backoff_base": 0.01, "backoff_max": 0.05, "timeout": 5, **options}
    return Client(api_key=KEY, base_url=base_url, **options)


def event(n=1, **fields):
    return {"feature": "ticket-triage", "model": "gpt-5-mini", "input_tokens": 100 * n, "output_tokens": 10 * n,
            **fields}


def unnamed(n):
    """An event without a feature: track() supplies it."""
    return {k: v for k, v in event(n).items() if k != "feature"}


@pytest.fixture
def clients():
    made = []

    def factory(base_url, **options):
        client = make_client(base_url, **options)
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close(timeout=1)


def test_it_sends_events_in_batches_with_the_bearer_key_and_stable_ids(httpserver, clients):
    recorder = Recorder()
    client = clients(serve(httpserver, recorder), batch_size=3, flush_interval=30)

    ids = [client.send(event(n)) for n in range(7)]

    assert client.flush(timeout=10) is True
    assert [len(r["body"]["events"]) for r in recorder.requests] == [3, 3, 1]
    assert [e["event_id"] for e in recorder.all_events()] == ids
    assert len(set(ids)) == 7
    assert recorder.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    assert recorder.requests[0]["headers"]["Content-Type"] == "application/json"
    first = recorder.all_events()[0]
    assert (first["input_tokens"], first["output_tokens"], first["feature"]) == (0, 0, "ticket-triage")
    assert first["timestamp"].endswith("+00:00")  # RFC 3339 with offset
    assert client.stats()["sent"] == 7


def test_it_honours_retry_after_on_429_and_resends_the_same_event_ids(httpserver, clients):
    recorder = Recorder(plan=[(429, {"errors": [{"field": None, "code": "throttled", "message": "slow down"}]},
                               {"Retry-After": "1"})])
    client = clients(serve(httpserver, recorder))

    client.send(event(1))
    client.send(event(2))

    assert client.flush(timeout=15) is True
    assert len(recorder.requests) == 2
    assert recorder.event_ids(0) == recorder.event_ids(1)  # the server dedups the retry by event_id
    assert recorder.requests[1]["at"] - recorder.requests[0]["at"] >= 1.0  # waited at least Retry-After
    events_only = {k: v for k, v in client.stats().items() if k not in ("scores", "shadow")}
    assert events_only | {"queued": 0} == {"sent": 2, "duplicates": 0, "dropped": 0, "failed": 0,
                                           "rejected": 0, "retried": 1, "queued": 0}


def test_it_backs_off_on_5xx_until_the_server_recovers(httpserver, clients):
    recorder = Recorder(plan=[(500, {}, {}), (503, {}, {}), (502, {}, {})])
    client = clients(serve(httpserver, recorder), max_retries=5)

    client.send(event())

    assert client.flush(timeout=15) is True
    assert len(recorder.requests) == 4
    assert len({tuple(recorder.event_ids(i)) for i in range(4)}) == 1
    assert client.stats()["retried"] == 3 and client.stats()["sent"] == 1


def test_it_gives_up_after_max_retries_and_counts_the_events_failed(httpserver, clients):
    recorder = Recorder(default=(503, {}, {}))
    client = clients(serve(httpserver, recorder), max_retries=2)

    client.send(event(1))
    client.send(event(2))

    assert client.flush(timeout=15) is True
    assert len(recorder.requests) == 3  # the first try and two retries
    assert client.stats()["failed"] == 2 and client.stats()["sent"] == 0


def test_it_does_not_retry_a_permanent_4xx(httpserver, clients):
    body = {"errors": [{"field": None, "code": "authentication_failed", "message": "unknown or revoked API key"}]}
    recorder = Recorder(default=(401, body, {}))
    client = clients(serve(httpserver, recorder))

    client.send(event())

    assert client.flush(timeout=10) is True
    assert len(recorder.requests) == 1
    assert client.stats()["failed"] == 1 and client.stats()["retried"] == 0


def test_it_counts_the_per_event_errors_of_a_207_without_retrying(httpserver, clients):
    body = {"accepted": 1, "duplicates": 1, "rejected": 1, "warnings": [], "errors": [
        {"index": 2, "event_id": "x", "field": "output_tokens", "code": "min_value", "message": "must be >= 0"}]}
    recorder = Recorder(plan=[(207, body, {})])
    client = clients(serve(httpserver, recorder))

    for n in range(3):
        client.send(event(n))

    assert client.flush(timeout=10) is True
    assert len(recorder.requests) == 1
    stats = client.stats()
    assert (stats["sent"], stats["duplicates"], stats["rejected"], stats["failed"], stats["retried"]) == (
        2, 1, 1, 0, 0)


def test_it_splits_a_batch_the_server_finds_too_large(httpserver, clients):
    recorder = Recorder(plan=[(413, {"errors": []}, {})])
    client = clients(serve(httpserver, recorder), flush_interval=30, batch_size=4)

    ids = [client.send(event(n)) for n in range(4)]

    assert client.flush(timeout=10) is True
    assert [len(r["body"]["events"]) for r in recorder.requests] == [4, 2, 2]
    assert recorder.event_ids(1) + recorder.event_ids(2) == ids
    assert client.stats()["sent"] == 4


def test_it_drops_and_counts_events_when_the_queue_is_full(httpserver, clients):
    recorder = Recorder()
    client = clients(serve(httpserver, recorder), max_queue=5, batch_size=1)
    recorder.release.clear()  # the server holds the first request: the sender is busy
    client.send(event(0))
    wait_for(lambda: len(recorder.requests) == 1, timeout=10, message="the first request to arrive")

    results = [client.send(event(n)) for n in range(1, 11)]

    assert results[5:] == [None] * 5  # the queue holds 5; the rest are dropped, not blocked on
    assert all(results[:5])
    assert client.stats()["dropped"] == 5
    recorder.release.set()
    assert client.flush(timeout=10) is True
    assert sorted(e["input_tokens"] for e in recorder.all_events()) == [n * 100 for n in range(6)]
    assert client.stats()["sent"] == 6


def test_it_never_raises_when_the_server_is_down(clients):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens here
    client = clients(f"http://127.0.0.1:{port}", max_retries=2)

    event_id = client.send(event())
    unserialisable = client.send({**event(), "attributes": {"x": object()}})

    assert event_id and unserialisable is None
    assert client.flush(timeout=10) is True
    assert client.stats()["failed"] == 1
    assert client.stats()["retried"] == 2
    assert client.stats()["dropped"] == 1


def test_it_gzips_the_body_when_asked(httpserver, clients):
    recorder = Recorder()
    client = clients(serve(httpserver, recorder), gzip=True)

    client.send(event(3, environment="staging"))

    assert client.flush(timeout=10) is True
    assert recorder.requests[0]["headers"]["Content-Encoding"] == "gzip"
    assert recorder.all_events()[0]["environment"] == "staging"


def test_it_flushes_queued_events_at_interpreter_exit(httpserver):
    recorder = Recorder()
    base_url = serve(httpserver, recorder)
    script = (
        "from costwatch_client import Client\n"
        f"cw = Client(api_key={KEY!r}, base_url={base_url!r}, flush_interval=60)\n"
        "cw.send({'feature': 'exit-test', 'model': 'm', 'input_tokens': 7, 'output_tokens': 1})\n"
    )

    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)

    assert [e["feature"] for e in recorder.all_events()] == ["exit-test"]


def test_track_sets_defaults_for_events_recorded_inside(httpserver, clients):
    recorder = Recorder()
    client = clients(serve(httpserver, recorder), environment="staging")

    with track(feature="support-answer", request_id="req-1", attributes={"customer": "acme"}):
        client.send(unnamed(1) | {"role": "triage"})
        with track(role="escalation", route_reason="low_confidence", attributes={"plan": "pro"}):
            client.send(unnamed(2))
    client.send(event(3))

    assert client.flush(timeout=10) is True
    first, second, third = recorder.all_events()
    assert (first["feature"], first["request_id"], first["role"], first["environment"]) == (
        "support-answer", "req-1", "triage", "staging")
    assert first["attributes"] == {"customer": "acme"}
    assert (second["role"], second["route_reason"], second["request_id"]) == ("escalation", "low_confidence", "req-1")
    assert second["attributes"] == {"customer": "acme", "plan": "pro"}
    assert isinstance(first["latency_ms"], int) and isinstance(second["latency_ms"], int)
    assert "request_id" not in third and "latency_ms" not in third  # outside the block
    assert third["feature"] == "ticket-triage"


def test_track_works_as_a_decorator_and_keeps_concurrent_tasks_apart():
    @track(feature="search-rank", role="primary")
    def handler():
        return current_fields()

    @track(feature="async-feature")
    async def async_handler(request_id):
        with track(request_id=request_id):
            await asyncio.sleep(0)
            return current_fields()

    async def both():
        return await asyncio.gather(async_handler("a"), async_handler("b"))

    assert handler() == {"feature": "search-rank", "role": "primary"}
    assert run_coroutine(both()) == [{"feature": "async-feature", "request_id": "a"},
                                   {"feature": "async-feature", "request_id": "b"}]
    assert current_fields() == {}


def test_it_reads_retry_after_as_seconds_or_an_http_date():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("") is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: no wait


def test_a_client_without_a_key_starts_and_drops_events(monkeypatch):
    monkeypatch.delenv("COSTWATCH_INGEST_KEY", raising=False)
    client = Client(api_key=None, base_url="http://127.0.0.1:9")

    assert client.send(event()) is None
    assert client.stats()["dropped"] == 1 and client.flush(timeout=1) is True
    client.close(timeout=1)


def test_it_reads_the_key_and_url_from_the_environment(httpserver, monkeypatch):
    recorder = Recorder()
    monkeypatch.setenv("COSTWATCH_INGEST_KEY", KEY)
    monkeypatch.setenv("COSTWATCH_URL", serve(httpserver, recorder))
    client = Client(flush_interval=0.05)

    client.send(event(2))

    assert client.flush(timeout=10) is True
    assert recorder.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    assert recorder.all_events()[0]["input_tokens"] == 200
    client.close(timeout=1)


def test_threads_sending_at_once_lose_and_repeat_nothing(httpserver, clients):
    recorder = Recorder()
    client = clients(serve(httpserver, recorder), batch_size=100)
    barrier = threading.Barrier(8)
    ids = [[] for _ in range(8)]

    def worker(n):
        barrier.wait()
        for i in range(250):
            ids[n].append(client.send(event(1, request_id=f"t{n}-{i}")))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert client.flush(timeout=30) is True
    received = [e["event_id"] for e in recorder.all_events()]
    assert len(received) == 2000 and set(received) == {i for per_thread in ids for i in per_thread}
    assert all(len(r["body"]["events"]) <= 100 for r in recorder.requests)
    assert client.stats()["sent"] == 2000 and client.stats()["dropped"] == 0


def test_a_forked_child_sends_with_its_own_sender(httpserver):
    recorder = Recorder()
    base_url = serve(httpserver, recorder)
    script = (
        "import os, sys\n"
        "from costwatch_client import Client\n"
        f"cw = Client(api_key={KEY!r}, base_url={base_url!r}, flush_interval=0.05)\n"
        "cw.send({'feature': 'parent', 'model': 'm', 'input_tokens': 1, 'output_tokens': 1})\n"
        "assert cw.flush(10)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    cw.send({'feature': 'child', 'model': 'm', 'input_tokens': 2, 'output_tokens': 1})\n"
        "    sys.exit(0 if cw.flush(10) else 1)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "sys.exit(os.waitstatus_to_exitcode(status))\n"
    )

    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)

    assert sorted(e["feature"] for e in recorder.all_events()) == ["child", "parent"]
