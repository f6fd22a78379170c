"""The shadow helper (`shadow=` on `Client.call`/`record` and `track`) against real local HTTP
servers (pytest-httpserver): one stands in for costwatch (events and scores), one route for
the Pro model. Sampling is replayed from seeded RNGs; ordering is proven with events, never
by timing."""

import json
import logging
import random
import sys
import threading
import urllib.request

import pytest
from costwatch_client.shadow import Shadower
from werkzeug import Response

from costwatch_client import track
from tests.conftest import run_coroutine, wait_for
from tests.integrations.test_client_scores import ScoresServer
from tests.integrations.test_client_sender import Recorder, clients  # noqa: F401 (fixture)


class Always:
    """An RNG whose every draw is `value` (0.0 samples every call at any rate > 0)."""

    def __init__(self, value):
        self.value = value

    def random(self):
        return self.value


def chat(text, model, tokens=10):
    return {"id": "c", "object": "chat.completion", "created": 1764000000, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": tokens, "total_tokens": 100 + tokens}}


class Pro:
    """The Pro model's HTTP route: answers a chat completion, optionally held at a gate or failing."""

    def __init__(self, status=200):
        self.status = status
        self.gate = threading.Event()
        self.gate.set()
        self.arrived = threading.Event()
        self.on_arrival = None  # called as each request arrives, before it is answered
        self.requests = 0
        self.lock = threading.Lock()

    def __call__(self, request):
        with self.lock:
            self.requests += 1
        if self.on_arrival is not None:
            self.on_arrival()
        self.arrived.set()
        self.gate.wait(30)
        return Response(json.dumps(chat("pro answer", "gpt-5")), status=self.status, content_type="application/json")


def setup(httpserver, clients, pro=None, **options):  # noqa: F811
    events, scores, pro = Recorder(), ScoresServer(), pro or Pro()
    httpserver.expect_request("/api/v1/events", method="POST").respond_with_handler(events)
    httpserver.expect_request("/api/v1/scores", method="POST").respond_with_handler(scores)
    httpserver.expect_request("/pro", method="POST").respond_with_handler(pro)
    client = clients(httpserver.url_for("/").rstrip("/"), **options)
    pro_url = httpserver.url_for("/pro")

    def call_pro():
        request = urllib.request.Request(pro_url, data=b"{}", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    return client, events, scores, pro, call_pro


def lite(text="lite answer"):
    return chat(text, "gpt-5-mini")


def by_role(events):
    return {event.get("role", "primary"): event for event in events.all_events()}


def test_the_shadow_is_recorded_with_role_and_parent_and_both_scores_are_sent(httpserver, clients):  # noqa: F811
    client, events, scores, pro, call_pro = setup(httpserver, clients)
    client.shadows.rng = Always(0.0)
    judged = []

    def judge(lite_result, pro_result):
        judged.append((lite_result["choices"][0]["message"]["content"], pro_result["choices"][0]["message"]["content"]))
        return 0.6, 0.9

    result = client.call(lite, costwatch={"feature": "answers", "request_id": "req-1",
                                          "shadow": {"call": call_pro, "rate": 0.05, "judge": judge}})

    assert result == lite()  # the caller gets the Lite answer, unchanged
    assert client.shadows.join(timeout=20) and client.flush(timeout=20)
    primary, shadow = by_role(events)["primary"], by_role(events)["shadow"]
    assert (shadow["parent_event_id"], shadow["feature"], shadow["request_id"], shadow["model"]) == (
        primary["event_id"], "answers", "req-1", "gpt-5")
    assert "shadow" not in primary and "parent_event_id" not in primary
    assert judged == [("lite answer", "pro answer")]
    assert {item["event_id"]: item["quality"] for item in scores.items()} == {
        primary["event_id"]: 0.6, shadow["event_id"]: 0.9}
    assert {item["source"] for item in scores.items()} == {"shadow-judge"}
    assert client.stats()["shadow"] == {"sampled": 1, "skipped_budget": 0, "dropped": 0, "recorded": 1,
                                             "call_failed": 0, "judge_failed": 0, "judged": 1, "bad_spec": 0}


def test_the_caller_returns_while_the_pro_call_is_still_held(httpserver, clients):  # noqa: F811
    pro = Pro()
    pro.gate.clear()  # the Pro model answers only when the test says so
    client, events, scores, pro, call_pro = setup(httpserver, clients, pro=pro)
    client.shadows.rng = Always(0.0)

    returned = client.call(lite, costwatch={"feature": "answers", "shadow": {"call": call_pro, "rate": 0.2}})

    # The caller has its answer although the Pro call cannot have finished: it never waited for it.
    assert returned == lite()
    assert client.stats()["shadow"]["recorded"] == 0
    assert pro.arrived.wait(20)  # the Pro call runs in the background...
    assert client.stats()["shadow"]["recorded"] == 0  # ...held at the gate, so not recorded yet
    pro.gate.set()
    assert client.shadows.join(timeout=20) and client.flush(timeout=20)
    assert client.stats()["shadow"]["recorded"] == 1
    assert by_role(events)["shadow"]["parent_event_id"] == by_role(events)["primary"]["event_id"]


def held_at_return(code, until: threading.Event, window: float):
    """A profile hook for the calling thread: when the function of `code` is about to return (its
    frame still on the stack), hold it there until `until` is set or `window` seconds passed. It
    gives a Pro call started too early every chance to arrive before the caller has returned."""
    def hook(frame, event, arg):
        if event == "return" and frame.f_code is code:
            until.wait(window)
    return hook


@pytest.mark.parametrize("how", ["call", "track"])
def test_the_pro_call_starts_only_after_the_caller_has_returned(httpserver, clients, how):  # noqa: F811
    pro = Pro()
    client, events, scores, pro, call_pro = setup(httpserver, clients, pro=pro)
    client.shadows.rng = Always(0.0)
    caller_returned = threading.Event()
    arrivals = []  # for each Pro request: had the caller returned when it arrived?
    pro.on_arrival = lambda: arrivals.append(caller_returned.is_set())
    shadow = {"call": call_pro, "rate": 0.2}
    entry = type(client).call if how == "call" else track.__exit__
    sys.setprofile(held_at_return(entry.__code__, pro.arrived, window=1.0))
    try:
        if how == "call":
            returned = client.call(lite, costwatch={"feature": "answers", "shadow": shadow})
        else:
            with track(feature="answers", shadow=shadow):
                returned = client.call(lite)
    finally:
        caller_returned.set()  # right after the wrapped call (or the block) returned
        sys.setprofile(None)
    assert returned == lite()
    assert client.shadows.join(timeout=20) and client.flush(timeout=20)
    assert arrivals == [True]  # the Pro request arrived only after the caller had its answer
    roles = by_role(events)
    assert roles["shadow"]["parent_event_id"] == roles["primary"]["event_id"]


def test_a_track_block_shadows_its_primary_call_after_the_block_exits(httpserver, clients):  # noqa: F811
    pro = Pro()
    client, events, scores, pro, call_pro = setup(httpserver, clients, pro=pro)
    client.shadows.rng = Always(0.0)

    with track(feature="support", shadow={"call": call_pro, "rate": 0.01}):
        client.record(lite("triage"), role="triage")
        client.call(lite)
        assert pro.requests == 0 and client.stats()["shadow"]["sampled"] == 0  # nothing before the block exits

    assert client.shadows.join(timeout=20) and client.flush(timeout=20)
    roles = by_role(events)
    assert roles["shadow"]["parent_event_id"] == roles["primary"]["event_id"]  # the Lite answer, not the triage
    assert roles["shadow"]["feature"] == "support" and pro.requests == 1
    assert all("shadow" not in event for event in events.all_events())


def test_the_sampled_share_follows_the_seeded_rng(httpserver, clients):  # noqa: F811
    client, events, scores, pro, call_pro = setup(httpserver, clients)
    client.shadows.rng = random.Random(42)
    replay = random.Random(42)
    expected = sum(1 for _ in range(400) if replay.random() < 0.1)

    for _ in range(400):
        client.record(lite(), feature="answers", shadow={"call": call_pro, "rate": 0.1})

    assert client.shadows.join(timeout=60) and client.flush(timeout=30)
    assert 20 <= expected <= 60  # the seed gives a plausible 10%
    assert client.stats()["shadow"]["sampled"] == expected == pro.requests
    assert sum(1 for e in events.all_events() if e.get("role") == "shadow") == expected


def test_a_rate_above_the_cap_is_clamped_with_one_warning(httpserver, clients, caplog):  # noqa: F811
    client, events, scores, pro, call_pro = setup(httpserver, clients)
    client.shadows.rng = random.Random(7)
    replay = random.Random(7)
    expected = sum(1 for _ in range(200) if replay.random() < 0.2)

    with caplog.at_level(logging.WARNING, logger="costwatch_client"):
        for _ in range(200):
            client.record(lite(), feature="answers", shadow={"call": call_pro, "rate": 0.9})
        assert client.shadows.join(timeout=60)

    assert client.stats()["shadow"]["sampled"] == expected == pro.requests
    assert len([r for r in caplog.records if "clamped to 0.2" in r.getMessage()]) == 1


def test_a_failing_pro_call_is_counted_not_raised(httpserver, clients):  # noqa: F811
    client, events, scores, pro, call_pro = setup(httpserver, clients, pro=Pro(status=500))
    client.shadows.rng = Always(0.0)

    returned = client.call(lite, costwatch={"feature": "answers",
                                            "shadow": {"call": call_pro, "judge": lambda a, b: (1, 1)}})

    assert returned == lite()
    assert client.shadows.join(timeout=20) and client.flush(timeout=20)
    shadow = client.stats()["shadow"]
    assert (shadow["call_failed"], shadow["recorded"], shadow["judged"]) == (1, 0, 0)
    assert [e.get("role", "primary") for e in events.all_events()] == ["primary"]
    assert scores.requests == []


def test_a_failing_or_lying_judge_is_counted_not_raised(httpserver, clients):  # noqa: F811
    client, events, scores, pro, call_pro = setup(httpserver, clients)
    client.shadows.rng = Always(0.0)

    def broken(lite_result, pro_result):
        raise RuntimeError("judge model timed out")

    client.call(lite, costwatch={"feature": "answers", "shadow": {"call": call_pro, "judge": broken}})
    client.call(lite, costwatch={"feature": "answers", "shadow": {"call": call_pro, "judge": lambda a, b: (2, 0)}})
    client.call(lite, costwatch={"feature": "answers", "shadow": {"call": call_pro, "pairwise_judge": lambda a, b: "?"}})

    assert client.shadows.join(timeout=20) and client.flush(timeout=20)
    shadow = client.stats()["shadow"]
    assert (shadow["judge_failed"], shadow["recorded"], shadow["judged"]) == (3, 3, 0)
    assert scores.requests == []  # no score from a judge that failed


def test_a_pairwise_judge_sees_the_answers_in_random_order(httpserver, clients):  # noqa: F811
    client, events, scores, pro, call_pro = setup(httpserver, clients, shadow_workers=1)
    client.shadows.rng = Always(0.0)
    client.shadows.order_rng = random.Random(3)
    replay = random.Random(3)
    lite_first = [replay.random() < 0.5 for _ in range(12)]
    shown_first = []

    def always_first(first, second):  # a judge with total position bias
        shown_first.append(first["choices"][0]["message"]["content"])
        return "first"

    for _ in range(12):
        client.record(lite(), feature="answers", shadow={"call": call_pro, "pairwise_judge": always_first})
        assert client.shadows.join(timeout=20)  # one at a time: the order draws are replayed in sequence

    assert client.flush(timeout=20)
    assert shown_first == ["lite answer" if first else "pro answer" for first in lite_first]
    assert True in lite_first and False in lite_first  # both orders were shown
    quality = {item["event_id"]: item["quality"] for item in scores.items()}
    lite_events = [e for e in events.all_events() if e.get("role") != "shadow"]
    # A biased judge's "first" becomes a win for whichever tier was shown first.
    assert [quality[e["event_id"]] for e in lite_events] == [1.0 if first else 0.0 for first in lite_first]
    shadows = [e for e in events.all_events() if e.get("role") == "shadow"]
    assert sorted(quality[e["event_id"]] for e in shadows) == sorted(0.0 if f else 1.0 for f in lite_first)


def test_a_tie_scores_both_tiers_one_half(httpserver, clients):  # noqa: F811
    client, events, scores, pro, call_pro = setup(httpserver, clients)
    client.shadows.rng = Always(0.0)

    client.record(lite(), feature="answers", shadow={"call": call_pro, "pairwise_judge": lambda a, b: "tie"})

    assert client.shadows.join(timeout=20) and client.flush(timeout=20)
    assert sorted(item["quality"] for item in scores.items()) == [0.5, 0.5]


def test_the_daily_budget_stops_sampling_per_feature(httpserver, clients):  # noqa: F811
    client, events, scores, pro, call_pro = setup(httpserver, clients)
    client.shadows.rng = Always(0.0)
    spec = {"call": call_pro, "rate": 0.2, "daily_budget_usd": 1.0, "cost_usd": lambda result: 0.4}

    for _ in range(4):
        client.record(lite(), feature="answers", shadow=spec)
        assert client.shadows.join(timeout=20)  # each spend is known before the next call
    client.record(lite(), feature="other", shadow=spec)
    assert client.shadows.join(timeout=20)

    # 0.4 + 0.4 + 0.4 = 1.2 >= 1.0 after the third call: the fourth is not sampled.
    assert client.shadows.spent_today("answers") == 0.4 + 0.4 + 0.4
    assert client.shadows.spent_today("other") == 0.4
    shadow = client.stats()["shadow"]
    assert (shadow["sampled"], shadow["skipped_budget"], pro.requests) == (4, 1, 4)


def test_a_budget_without_a_cost_estimate_does_not_shadow(httpserver, clients):  # noqa: F811
    client, events, scores, pro, call_pro = setup(httpserver, clients)
    client.shadows.rng = Always(0.0)

    client.record(lite(), feature="answers", shadow={"call": call_pro, "daily_budget_usd": 5})

    assert client.shadows.join(timeout=5)
    assert pro.requests == 0 and client.stats()["shadow"]["skipped_budget"] == 1


def test_the_workers_and_their_queue_are_bounded(httpserver, clients):  # noqa: F811
    pro = Pro()
    pro.gate.clear()
    client, events, scores, pro, call_pro = setup(httpserver, clients, pro=pro)
    client.shadows = Shadower(client, workers=2, max_pending=3, rng=Always(0.0))

    for _ in range(10):
        client.record(lite(), feature="answers", shadow={"call": call_pro})
    wait_for(lambda: pro.requests == 2, message="two Pro calls held")

    workers = [t for t in threading.enumerate() if t.name == client.shadows.thread_name]
    assert len(workers) == 2
    # 2 running, 3 queued; the other 5 were dropped, not queued without bound.
    # At most 2 running and 3 queued: the rest were dropped, not queued without bound (how many
    # were already taken off the queue when the later calls came depends on the scheduler).
    sampled, dropped = client.stats()["shadow"]["sampled"], client.stats()["shadow"]["dropped"]
    assert sampled + dropped == 10 and 3 <= sampled <= 5
    pro.gate.set()
    assert client.shadows.join(timeout=20)
    assert pro.requests == client.stats()["shadow"]["sampled"]


def test_acall_shadows_like_call(httpserver, clients):  # noqa: F811
    client, events, scores, pro, call_pro = setup(httpserver, clients)
    client.shadows.rng = Always(0.0)

    async def lite_async():
        return lite()

    result = run_coroutine(client.acall(lite_async, costwatch={"feature": "answers", "shadow": {
        "call": call_pro, "judge": lambda a, b: (0.5, 1.0)}}))

    assert result == lite()
    assert client.shadows.join(timeout=20) and client.flush(timeout=20)
    roles = by_role(events)
    assert roles["shadow"]["parent_event_id"] == roles["primary"]["event_id"]
    assert {item["event_id"]: item["quality"] for item in scores.items()} == {
        roles["primary"]["event_id"]: 0.5, roles["shadow"]["event_id"]: 1.0}
