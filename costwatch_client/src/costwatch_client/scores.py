"""Late quality scores: `Client.score()` queues them and one daemon thread POSTs them to
`/api/v1/scores` in batches (docs/savings.md).

Like events, a score never blocks or raises into the caller. 429, 5xx and connection
errors are retried with the client's backoff (honouring `Retry-After`). A score for an
event the server has not stored yet comes back per item as `not_found` (the event may
still be in the events queue, or in flight): it is retried a bounded number of times
with its own backoff, then counted as failed.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time

from .wire import RetryableError

logger = logging.getLogger("costwatch_client")

MAX_SCORES = 1000  # the scores API takes at most 1000 items per request
COUNTERS = ("sent", "rejected", "failed", "dropped", "retried", "not_found_retried")


class _Item:
    __slots__ = ("payload", "attempts", "due")

    def __init__(self, payload: dict):
        self.payload = payload
        self.attempts = 0  # not_found answers so far
        self.due = 0.0  # monotonic time before which it is not sent (a not_found backoff)


def valid_quality(quality) -> float | None:
    """`quality` as a float in 0-1, or None (bools and NaN are not qualities)."""
    if isinstance(quality, bool) or not isinstance(quality, (int, float)):
        return None
    quality = float(quality)
    return quality if math.isfinite(quality) and 0.0 <= quality <= 1.0 else None


class ScoreSender:
    """The scores queue of one client (recreated with the client's sender after a fork)."""

    def __init__(self, client, *, not_found_retries: int, not_found_backoff: float):
        self.client = client
        self.url = client.base_url + "/api/v1/scores"
        self.not_found_retries = max(0, int(not_found_retries))
        self.not_found_backoff = max(0.0, float(not_found_backoff))
        self.counts = dict.fromkeys(COUNTERS, 0)
        self._waiting: list[_Item] = []
        self._inflight = 0
        self._cond = threading.Condition()
        self._flush_requested = False
        self._thread: threading.Thread | None = None

    # --- the caller's side ---------------------------------------------------------------
    def add(self, event_id, quality, source, *, accepting: bool = True) -> bool:
        if not accepting:  # no key, or the client is closed
            self._count("dropped")
            return False
        value = valid_quality(quality)
        if not event_id or value is None or (source is not None and not isinstance(source, str)):
            logger.warning("costwatch: dropped a score: event_id %r, quality %r, source %r "
                           "(quality must be a number in 0-1)", event_id, quality, source)
            self._count("dropped")
            return False
        payload = {"event_id": str(event_id), "quality": value}
        if source:
            payload["source"] = source[:50]
        with self._cond:
            if len(self._waiting) + self._inflight >= self.client.max_queue:
                self.counts["dropped"] += 1
                return False
            self._waiting.append(_Item(payload))
            self._start_thread()
            self._cond.notify_all()
        return True

    def pending(self) -> int:
        with self._cond:
            return len(self._waiting) + self._inflight

    def flush(self, deadline: float | None) -> bool:
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            while self._waiting or self._inflight:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.5) if remaining is not None else 0.5)
            return True

    def stop(self):
        """After the client's abort: whatever is still waiting is counted failed."""
        with self._cond:
            if self._waiting:
                logger.warning("costwatch: %d scores not sent at close", len(self._waiting))
            self.counts["failed"] += len(self._waiting)
            self._waiting.clear()
            self._cond.notify_all()

    def _count(self, name: str, n: int = 1):
        with self._cond:
            self.counts[name] += n

    def _start_thread(self):
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="costwatch-scores", daemon=True)
            self._thread.start()

    # --- the sender thread -------------------------------------------------------------------
    def _next_batch(self) -> list[_Item] | None:
        """Wait until a batch is due: ready items that waited flush_interval, a full batch, or a flush."""
        client = self.client
        ready_since = None
        with self._cond:
            while True:
                if client._abort.is_set():
                    return None
                now = time.monotonic()
                ready = [item for item in self._waiting if item.due <= now]
                if ready and ready_since is None:
                    ready_since = now
                if ready and (len(ready) >= client.batch_size or self._flush_requested
                              or now >= ready_since + client.flush_interval):
                    batch = ready[:MAX_SCORES]
                    chosen = set(map(id, batch))
                    self._waiting = [item for item in self._waiting if id(item) not in chosen]
                    self._inflight += len(batch)
                    return batch
                if not self._waiting:
                    self._flush_requested = False
                waits = [item.due - now for item in self._waiting if item.due > now]
                if ready:
                    waits.append(ready_since + client.flush_interval - now)
                self._cond.wait(max(0.001, min(waits)) if waits else None)

    def _run(self):
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            requeue: list[_Item] = []
            try:
                requeue = self._post_with_retries(batch)
            except Exception:  # never let the thread die
                logger.exception("costwatch: unexpected error while sending %d scores", len(batch))
                self._count("failed", len(batch))
            with self._cond:
                self._inflight -= len(batch)
                self._waiting.extend(requeue)
                self._cond.notify_all()

    def _post_with_retries(self, batch: list[_Item]) -> list[_Item]:
        client = self.client
        body = [json.dumps({"scores": [item.payload for item in batch]}, separators=(",", ":")).encode()]
        attempt = 0
        while True:
            try:
                status, raw = client._post(body, url=self.url, raw=True)
            except RetryableError as exc:
                if attempt >= client.max_retries or client._abort.is_set():
                    logger.warning("costwatch: giving up on %d scores after %d attempts: %s",
                                   len(batch), attempt + 1, exc)
                    self._count("failed", len(batch))
                    return []
                attempt += 1
                self._count("retried")
                if client._abort.wait(client._backoff(attempt - 1, exc.retry_after)):
                    self._count("failed", len(batch))
                    return []
                continue
            return self._handle_response(batch, status, raw)

    def _handle_response(self, batch: list[_Item], status: int, raw: bytes) -> list[_Item]:
        try:
            result = json.loads(raw or b"{}")
        except ValueError:
            result = {}
        if not isinstance(result, dict) or not (200 <= status < 300 or (status == 400 and "rejected" in result)):
            self._count("failed", len(batch))  # a bad key, a missing scope, no scores API: retrying cannot help
            logger.warning("costwatch: HTTP %d, %d scores not stored: %s", status, len(batch),
                           raw[:200].decode("utf-8", "replace"))
            return []
        self._count("sent", int(result.get("accepted", 0)))
        requeue = []
        for error in result.get("errors") or []:
            index = error.get("index") if isinstance(error, dict) else None
            if not isinstance(index, int) or not 0 <= index < len(batch):
                continue
            item = batch[index]
            if error.get("code") == "not_found" and item.attempts < self.not_found_retries:
                # The event may not be stored yet: try again later, backing off.
                item.due = time.monotonic() + self.not_found_backoff * (2 ** item.attempts)
                item.attempts += 1
                self._count("not_found_retried")
                requeue.append(item)
            elif error.get("code") == "not_found":
                logger.warning("costwatch: score for event %s not stored: the event was not found after %d tries",
                               item.payload["event_id"], item.attempts + 1)
                self._count("failed")
            else:
                logger.warning("costwatch rejected the score of event %s: %s %s: %s", item.payload["event_id"],
                               error.get("field"), error.get("code"), error.get("message"))
                self._count("rejected")
        return requeue
