"""`Client.score()` against a real local HTTP server (pytest-httpserver) standing in for
`POST /api/v1/scores`: batching, retries with Retry-After, `not_found` retried a bounded
number of times, per-item rejections, bad qualities dropped at the caller."""

import json
import socket
import threading

from werkzeug import Response

from tests.integrations.test_client_sender import KEY, clients  # noqa: F401 (fixture)


class ScoresServer:
    """Answers each POST /api/v1/scores with a planned status, else per-item results: an
    event_id in `unknown` is `not_found` until it has been asked about `known_after` times."""

    def __init__(self, plan=None, unknown=(), known_after=10**9):
        self.plan = list(plan or [])
        self.unknown = set(unknown)
        self.known_after = known_after
        self.asked = {}
        self.requests = []
        self.lock = threading.Lock()

    def __call__(self, request):
        body = json.loads(request.get_data())
        with self.lock:
            self.requests.append({"headers": dict(request.headers), "body": body})
            if self.plan:
                status, headers = self.plan.pop(0)
                return Response(json.dumps({"errors": [{"field": None, "code": "busy", "message": "later"}]}),
                                status=status, headers=headers, content_type="application/json")
            errors = []
            for index, item in enumerate(body["scores"]):
                self.asked[item["event_id"]] = self.asked.get(item["event_id"], 0) + 1
                if item["event_id"] in self.unknown and self.asked[item["event_id"]] <= self.known_after:
                    errors.append({"index": index, "event_id": item["event_id"], "field": "event_id",
                                   "code": "not_found", "message": "no such event (yet)"})
                elif item["event_id"].startswith("bad"):
                    errors.append({"index": index, "event_id": item["event_id"], "field": "source",
                                   "code": "max_length", "message": "too long"})
        n = len(body["scores"])
        payload = {"accepted": n - len(errors), "rejected": len(errors), "errors": errors, "warnings": []}
        status = 200 if not errors else (207 if len(errors) < n else 400)
        return Response(json.dumps(payload), status=status, content_type="application/json")

    def items(self):
        return [item for request in self.requests for item in request["body"]["scores"]]


def serve(httpserver, server):
    httpserver.expect_request("/api/v1/scores", method="POST").respond_with_handler(server)
    return httpserver.url_for("/").rstrip("/")


def test_scores_are_batched_with_the_key_and_counted(httpserver, clients):  # noqa: F811
    server = ScoresServer()
    client = clients(serve(httpserver, server), flush_interval=0.5)

    assert client.score("evt-1", 0.25) is True
    assert client.score("evt-2", 1, source="thumbs") is True
    assert client.score("evt-3", 0) is True

    assert client.flush(timeout=10) is True
    assert len(server.requests) == 1  # one batch, not three requests
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    assert server.items() == [{"event_id": "evt-1", "quality": 0.25},
                              {"event_id": "evt-2", "quality": 1.0, "source": "thumbs"},
                              {"event_id": "evt-3", "quality": 0.0}]
    assert client.stats()["scores"] == {"sent": 3, "rejected": 0, "failed": 0, "dropped": 0, "retried": 0,
                                        "not_found_retried": 0, "queued": 0}


def test_a_quality_outside_0_1_or_not_a_number_is_dropped_at_the_caller(httpserver, clients):  # noqa: F811
    server = ScoresServer()
    client = clients(serve(httpserver, server))

    results = [client.score("evt-1", value) for value in (1.5, -0.1, "0.5", None, True, float("nan"))]
    results.append(client.score("", 0.5))

    assert results == [False] * 7
    assert client.flush(timeout=5) is True
    assert server.requests == []
    assert client.stats()["scores"]["dropped"] == 7


def test_429_is_retried_after_retry_after_with_the_same_scores(httpserver, clients):  # noqa: F811
    server = ScoresServer(plan=[(429, {"Retry-After": "1"}), (503, {})])
    client = clients(serve(httpserver, server))

    client.score("evt-1", 0.5)

    assert client.flush(timeout=15) is True
    assert [r["body"] for r in server.requests] == [{"scores": [{"event_id": "evt-1", "quality": 0.5}]}] * 3
    assert client.stats()["scores"]["retried"] == 2 and client.stats()["scores"]["sent"] == 1


def test_not_found_is_retried_until_the_event_is_stored(httpserver, clients):  # noqa: F811
    server = ScoresServer(unknown={"late"}, known_after=2)
    client = clients(serve(httpserver, server), score_not_found_backoff=0.05, score_not_found_retries=4)

    client.score("late", 0.75)
    client.score("evt-ok", 0.5)

    assert client.flush(timeout=15) is True
    assert server.asked == {"late": 3, "evt-ok": 1}  # not_found twice, stored on the third try
    scores = client.stats()["scores"]
    assert (scores["sent"], scores["not_found_retried"], scores["failed"]) == (2, 2, 0)


def test_not_found_gives_up_after_the_bounded_retries_and_counts_failed(httpserver, clients):  # noqa: F811
    server = ScoresServer(unknown={"never"})
    client = clients(serve(httpserver, server), score_not_found_backoff=0.02, score_not_found_retries=3)

    client.score("never", 0.5)

    assert client.flush(timeout=15) is True
    assert server.asked == {"never": 4}  # the first try and 3 retries
    scores = client.stats()["scores"]
    assert (scores["sent"], scores["not_found_retried"], scores["failed"], scores["rejected"]) == (0, 3, 1, 0)


def test_other_per_item_errors_are_rejected_without_retry(httpserver, clients):  # noqa: F811
    server = ScoresServer()
    client = clients(serve(httpserver, server), flush_interval=0.5)

    client.score("bad-1", 0.5)
    client.score("evt-2", 0.5)

    assert client.flush(timeout=10) is True
    assert len(server.requests) == 1
    scores = client.stats()["scores"]
    assert (scores["sent"], scores["rejected"], scores["failed"]) == (1, 1, 0)


def test_a_permanent_4xx_fails_the_batch_without_retry(httpserver, clients):  # noqa: F811
    httpserver.expect_request("/api/v1/scores", method="POST").respond_with_json({"errors": []}, status=403)
    client = clients(httpserver.url_for("/").rstrip("/"))

    client.score("evt-1", 0.5)

    assert client.flush(timeout=5) is True
    assert client.stats()["scores"]["failed"] == 1 and client.stats()["scores"]["retried"] == 0


def test_score_never_raises_when_the_server_is_down(clients):  # noqa: F811
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens here
    client = clients(f"http://127.0.0.1:{port}", max_retries=1)

    assert client.score("evt-1", 0.5) is True
    assert client.flush(timeout=10) is True
    assert client.stats()["scores"]["failed"] == 1 and client.stats()["scores"]["retried"] == 1
