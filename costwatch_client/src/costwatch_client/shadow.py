"""The opt-in shadowing helper (docs/savings.md "Shadowing Lite calls").

For a sampled fraction of Lite calls, the Pro call (`shadow["call"]`, no arguments) runs
on one of a few background threads, handed over after the Lite answer is recorded and
never waited for by the caller. The worker starts it only once the caller has returned: it
waits until the client's method the caller called (`call`, `record`, `acall`, the `track`
block's exit) is no longer on the calling thread's stack. It is recorded with `role=shadow` and `parent_event_id`
= the Lite event's id; with a judge, both qualities go through `Client.score()`.
Nothing here raises into the caller: broken Pro calls and judges are counted and logged.
"""

from __future__ import annotations

import logging
import queue
import random
import sys
import threading
import time
from datetime import datetime, timezone

from .context import shadow_scope

logger = logging.getLogger("costwatch_client")

MAX_RATE = 0.2  # never shadow more than a fifth of the traffic, whatever the caller asks
PAIRWISE = {"first": (1.0, 0.0), "second": (0.0, 1.0), "tie": (0.5, 0.5)}
COUNTERS = ("sampled", "skipped_budget", "dropped", "recorded", "call_failed", "judge_failed", "judged",
            "bad_spec")
KEEP = ("feature", "environment", "request_id", "attributes")  # Lite fields the shadow event shares
PACKAGE = __name__.rpartition(".")[0]  # "costwatch_client"
CALLER_WAIT_SECONDS = 10.0  # a caller still inside the client this long is not waited for any more


def _entry_frame():
    """The frame of the client's method that the caller called: the outermost frame of this
    package in the unbroken run of them at the top of the calling thread's stack."""
    frame, entry = sys._getframe(1), None
    while frame is not None and frame.f_globals.get("__name__", "").startswith(PACKAGE):
        entry, frame = frame, frame.f_back
    return entry


def _on_stack(top, frame) -> bool:
    while top is not None:
        if top is frame:
            return True
        top = top.f_back
    return False


def _wait_for_caller(caller) -> None:
    """Return once the caller's thread has left the client's method (see the module docstring)."""
    thread_id, entry = caller
    deadline = time.monotonic() + CALLER_WAIT_SECONDS
    while entry is not None and time.monotonic() < deadline:
        if not _on_stack(sys._current_frames().get(thread_id), entry):
            return
        time.sleep(0.001)


class Shadower:
    """The shadow workers of one client: `workers` threads and a queue of `max_pending` jobs."""

    def __init__(self, client, *, workers: int = 2, max_pending: int = 100, rng: random.Random | None = None):
        self.client = client
        self.rng = rng or random.Random()  # sampling draws
        self.order_rng = random.Random()  # the pairwise judge's order (its own, so that tests can replay it)
        self.workers = max(1, int(workers))
        self.counts = dict.fromkeys(COUNTERS, 0)
        self._jobs: queue.Queue = queue.Queue(maxsize=max(1, int(max_pending)))
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._spent: dict[tuple[str, str], float] = {}  # (UTC day, feature) -> estimated shadow USD
        self._warned: set[str] = set()
        self._stopped = False
        self.thread_name = f"costwatch-shadow-{id(self):x}"

    # --- the caller's side: decides and hands over, nothing more -------------------------------
    def after_record(self, spec: dict | None, response, event: dict):
        """Called by `Client.record()` once the Lite event is queued (never raises)."""
        try:
            if spec is not None:
                self.offer(spec, response, event)
                return
            owner = shadow_scope()
            if owner is not None and event.get("role") in (None, "primary"):
                # In a track(shadow=...) block the last primary call is the Lite answer; the
                # Pro call starts when the block exits.
                owner.on_exit = lambda: self.offer(owner.shadow, response, event)
        except Exception:
            logger.warning("costwatch: shadow helper failed", exc_info=True)
            self._count("bad_spec")

    def offer(self, spec: dict, lite_result, lite_event: dict) -> bool:
        """Sample, check the day's budget, and queue the Pro call; True when it was queued."""
        if self._stopped:
            return False
        if not isinstance(spec, dict) or not callable(spec.get("call")):
            self._warn_once("spec", "costwatch: shadow= needs {'call': <callable>, 'rate': ...}; not shadowing")
            self._count("bad_spec")
            return False
        if self.rng.random() >= self.rate(spec):
            return False
        feature = lite_event.get("feature") or ""
        if self.over_budget(spec, feature):
            self._count("skipped_budget")
            return False
        try:
            caller = (threading.get_ident(), _entry_frame())
            self._jobs.put_nowait((spec, lite_result, lite_event, caller))
        except queue.Full:
            self._count("dropped")
            return False
        self._count("sampled")
        self._start_workers()
        return True

    def rate(self, spec: dict) -> float:
        try:
            rate = float(spec.get("rate", 0.01))
        except (TypeError, ValueError):
            rate = 0.0
        if rate > MAX_RATE:
            self._warn_once("rate", f"costwatch: shadow rate {rate} clamped to {MAX_RATE}")
            rate = MAX_RATE
        return max(0.0, rate)

    def over_budget(self, spec: dict, feature: str) -> bool:
        """True once the feature's estimated shadow spend today (UTC) reached daily_budget_usd."""
        budget = spec.get("daily_budget_usd")
        if budget is None:
            return False
        if spec.get("cost_usd") is None:
            self._warn_once("budget", "costwatch: shadow daily_budget_usd needs cost_usd (a number or "
                                      "callable(pro_result)); not shadowing")
            return True
        with self._lock:
            return self._spent.get((_today(), feature), 0.0) >= float(budget)

    def spent_today(self, feature: str) -> float:
        with self._lock:
            return self._spent.get((_today(), feature), 0.0)

    # --- the workers ----------------------------------------------------------------------------
    def _start_workers(self):
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            while len(self._threads) < self.workers:
                thread = threading.Thread(target=self._work, name=self.thread_name, daemon=True)
                thread.start()
                self._threads.append(thread)

    def stop(self):
        """At close: queued jobs are dropped and idle workers exit (a running Pro call finishes)."""
        self._stopped = True
        for _ in self._threads:
            try:
                self._jobs.put_nowait(None)
            except queue.Full:
                break

    def _work(self):
        while True:
            job = self._jobs.get()
            if job is None or self._stopped:
                self._jobs.task_done()
                if job is None:
                    return
                continue
            spec, lite_result, lite_event, caller = job
            try:
                _wait_for_caller(caller)
                del caller, job  # not keeping the caller's frame (and its locals) alive any longer
                self.run(spec, lite_result, lite_event)
            except Exception:  # never let a worker die
                logger.exception("costwatch: shadow job failed")
            finally:
                self._jobs.task_done()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every queued shadow job finished (for tests and shutdown)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._jobs.unfinished_tasks:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def run(self, spec: dict, lite_result, lite_event: dict):
        started = time.monotonic()
        try:
            pro_result = spec["call"]()
        except Exception:
            logger.warning("costwatch: shadow Pro call failed", exc_info=True)
            self._count("call_failed")
            return
        latency_ms = int((time.monotonic() - started) * 1000)
        feature = lite_event.get("feature") or ""
        self._add_spend(spec, pro_result, feature)
        fields = {key: lite_event[key] for key in KEEP if lite_event.get(key) is not None}
        shadow_id = self.client.record(pro_result, request_kwargs=spec.get("request_kwargs"), role="shadow",
                                       parent_event_id=lite_event["event_id"], latency_ms=latency_ms, **fields)
        if shadow_id is None:
            self._count("call_failed")  # not an SDK response the client can read: nothing to pair
            return
        self._count("recorded")
        qualities = self._judge(spec, lite_result, pro_result)
        if qualities is not None:
            source = spec.get("source") or "shadow-judge"
            self.client.score(lite_event["event_id"], qualities[0], source=source)
            self.client.score(shadow_id, qualities[1], source=source)
            self._count("judged")

    def _judge(self, spec: dict, lite_result, pro_result) -> tuple[float, float] | None:
        pointwise, pairwise = spec.get("judge"), spec.get("pairwise_judge")
        if pointwise is None and pairwise is None:
            return None
        try:
            if pointwise is not None:
                lite_q, pro_q = pointwise(lite_result, pro_result)
            else:
                # Random order, so that a judge's position bias favours neither tier.
                lite_first = self.order_rng.random() < 0.5
                first, second = (lite_result, pro_result) if lite_first else (pro_result, lite_result)
                first_q, second_q = PAIRWISE[pairwise(first, second)]
                lite_q, pro_q = (first_q, second_q) if lite_first else (second_q, first_q)
            lite_q, pro_q = float(lite_q), float(pro_q)
            if not (0.0 <= lite_q <= 1.0 and 0.0 <= pro_q <= 1.0):
                raise ValueError(f"qualities must be in 0-1, got {lite_q}, {pro_q}")
        except Exception:
            logger.warning("costwatch: shadow judge failed", exc_info=True)
            self._count("judge_failed")
            return None
        return lite_q, pro_q

    def _add_spend(self, spec: dict, pro_result, feature: str):
        cost = spec.get("cost_usd")
        if cost is None:
            return
        try:
            usd = float(cost(pro_result) if callable(cost) else cost)
        except Exception:
            logger.warning("costwatch: shadow cost_usd failed; counting the call at 0", exc_info=True)
            return
        with self._lock:
            key = (_today(), feature)
            self._spent = {k: v for k, v in self._spent.items() if k[0] == key[0]}  # forget past days
            self._spent[key] = self._spent.get(key, 0.0) + usd

    def _count(self, name: str, n: int = 1):
        with self._lock:
            self.counts[name] += n

    def _warn_once(self, key: str, message: str):
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message)


def _today() -> str:
    return datetime.now(timezone.utc).date().isoformat()
