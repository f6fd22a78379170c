"""The non-blocking batching sender.

`Client.send()` runs in the caller's request path, so it never blocks and never raises:
it serialises the event, puts it on a bounded queue and returns. One daemon thread per
client drains the queue in batches and POSTs them to `/api/v1/events` with urllib (no
third-party HTTP library), retrying 429, 5xx and connection errors with exponential
backoff and jitter (honouring `Retry-After`). Every event carries an `event_id` assigned
at send time, so a retried batch is deduplicated by the server instead of double-counted.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import random
import threading
import time
import uuid
import weakref

from .context import apply_context, shadow_scope
from .scores import ScoreSender
from .sdk import event_from_response, stream_kind
from .shadow import Shadower
from .wire import RetryableError, json_default, post_json, utc_now_iso

logger = logging.getLogger("costwatch_client")

MAX_BATCH = 1000  # the events API takes at most 1000 events per request
MAX_BODY_BYTES = 4_500_000  # stay under the API's 5 MB limit with room for the envelope
_WAKE = object()  # a queue item that only wakes the sender (flush, close)

_live_clients: weakref.WeakSet = weakref.WeakSet()


class Client:
    """Send usage events to costwatch without slowing the app down.

    >>> cw = Client(api_key="cw_...", base_url="https://costwatch.example.com")
    >>> cw.record(response, feature="ticket-triage", request_kwargs=kwargs)
    """

    def __init__(self, api_key: str | None = None, base_url: str | None = None, *, max_queue: int = 10000,
                 batch_size: int = 500, flush_interval: float = 1.0, timeout: float = 5, max_retries: int = 5,
                 backoff_base: float = 0.5, backoff_max: float = 30.0, max_retry_after: float = 300.0,
                 gzip: bool = False, environment: str | None = None, feature: str | None = None,
                 shutdown_timeout: float = 5.0, score_not_found_retries: int = 6,
                 score_not_found_backoff: float = 1.0, shadow_workers: int = 2):
        api_key = api_key or os.environ.get("COSTWATCH_INGEST_KEY", "")
        base_url = base_url or os.environ.get("COSTWATCH_URL") or "http://127.0.0.1:8000"
        # No key (a dev machine, a test run): the app must still start; events are counted as dropped.
        self.enabled = bool(api_key)
        if not self.enabled:
            logger.warning("costwatch: no API key (api_key= or COSTWATCH_INGEST_KEY); events will be dropped")
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/api/v1/events"
        self.max_queue = max(1, int(max_queue))
        self.batch_size = min(MAX_BATCH, max(1, int(batch_size)))
        self.flush_interval = float(flush_interval)
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.gzip = gzip
        self.shutdown_timeout = shutdown_timeout
        self.score_options = {"not_found_retries": score_not_found_retries,
                              "not_found_backoff": score_not_found_backoff}
        self.shadow_workers = shadow_workers
        self.defaults = {k: v for k, v in (("environment", environment), ("feature", feature)) if v}
        self._counts = {"sent": 0, "duplicates": 0, "dropped": 0, "failed": 0, "rejected": 0, "retried": 0}
        self._counts_lock = threading.Lock()
        self._closed = False
        self._reset_sender()
        _live_clients.add(self)

    # --- the caller's side: never blocks, never raises -------------------------------------
    def send(self, event: dict) -> str | None:
        """Queue one event; returns its event_id, or None when it was dropped."""
        payload = self._send(event)
        return payload["event_id"] if payload else None

    def _send(self, event: dict) -> dict | None:
        try:
            payload = apply_context(dict(event), defaults=self.defaults)
            payload.setdefault("event_id", str(uuid.uuid4()))
            payload.setdefault("timestamp", utc_now_iso())
            data = json.dumps(payload, default=json_default, separators=(",", ":")).encode()
        except Exception:  # a bad event must not break the app
            logger.warning("costwatch: dropped an event that could not be serialised", exc_info=True)
            self._count("dropped")
            return None
        return payload if self._enqueue(data) else None

    def record(self, response, *, request_kwargs: dict | None = None, shadow: dict | None = None,
               **fields) -> str | None:
        """Build the event from an SDK response (OpenAI, Anthropic, Google) and send it.

        `shadow={"call": ..., "rate": ...}` shadows this call to Pro (docs/savings.md)."""
        try:
            event = event_from_response(response, request_kwargs=request_kwargs, **fields)
        except Exception:
            logger.warning("costwatch: could not read usage from %s", type(response).__name__, exc_info=True)
            self._count("dropped")
            return None
        payload = self._send(event)
        if payload is not None and (shadow is not None or shadow_scope() is not None):
            self.shadows.after_record(shadow, response, payload)
        return payload["event_id"] if payload else None

    def score(self, event_id: str, quality: float, source: str | None = None) -> bool:
        """Queue a 0-1 quality score of a sent event; never blocks or raises (docs/savings.md).
        False when it was dropped (not a 0-1 number, queue full, no key, closed)."""
        if self._pid != os.getpid():
            self._reset_sender()
        try:
            return self._scores.add(event_id, quality, source, accepting=self.enabled and not self._closed)
        except Exception:
            logger.warning("costwatch: dropped a score", exc_info=True)
            return False

    def call(self, fn, /, *args, costwatch: dict | None = None, **kwargs):
        """`fn(*args, **kwargs)` (an SDK create call), timed and recorded; returns its result.

        Streams are returned wrapped so that the event is recorded when they end.
        `costwatch={...}` carries event fields (feature, role, ...) for this call.
        """
        fields = dict(costwatch or {})
        started = time.monotonic()
        result = fn(*args, **kwargs)
        if stream_kind(result) == "stream":
            return self.record_stream(result, request_kwargs=kwargs, _started=started, **fields)
        fields.setdefault("latency_ms", int((time.monotonic() - started) * 1000))
        self.record(result, request_kwargs=kwargs, **fields)
        return result

    async def acall(self, fn, /, *args, costwatch: dict | None = None, **kwargs):
        """`await fn(*args, **kwargs)` for the async SDK clients, timed and recorded like `call()`."""
        fields = dict(costwatch or {})
        started = time.monotonic()
        result = await fn(*args, **kwargs)
        if stream_kind(result) == "stream":
            return self.record_stream(result, request_kwargs=kwargs, _started=started, **fields)
        fields.setdefault("latency_ms", int((time.monotonic() - started) * 1000))
        self.record(result, request_kwargs=kwargs, **fields)
        return result

    def record_stream(self, stream, *, request_kwargs: dict | None = None, _started: float | None = None,
                      **fields):
        """Wrap a stream (sync or async) so its event is recorded when it is exhausted or closed."""
        from .streams import RecordedStream

        fields.pop("shadow", None)  # streams are not shadowed
        return RecordedStream(self, stream, request_kwargs=request_kwargs, started=_started, fields=fields)

    def stats(self) -> dict:
        """Counters: sent (stored or duplicate), dropped (queue full / closed), failed (not
        delivered), rejected (refused by the server per event), retried (re-sent requests)."""
        with self._counts_lock:
            counts = dict(self._counts)
        counts["queued"] = self._pending
        counts["scores"] = {**self._scores.counts, "queued": self._scores.pending()}
        counts["shadow"] = dict(self.shadows.counts)
        return counts

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued event, then score, was handled (sent, rejected or failed)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        events = self._flush_events(deadline)
        return self._scores.flush(deadline) and events

    def _flush_events(self, deadline: float | None) -> bool:
        with self._pending_cond:
            if self._pending == 0:
                return True
            self._flush_requested.set()
            self._wake()
            while self._pending > 0:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._pending_cond.wait(remaining if remaining is not None else 0.5)
            return True

    def close(self, timeout: float | None = None) -> bool:
        """Flush (up to `timeout`, default `shutdown_timeout`), then stop the sender."""
        if self._closed:
            return self._pending == 0
        self._closed = True
        timeout = self.shutdown_timeout if timeout is None else timeout
        drained = self.flush(timeout)
        self._abort.set()  # whatever is still retrying gives up now
        self._wake()
        self._scores.stop()
        self.shadows.stop()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(0.1, min(timeout, self.timeout + 1)))
        _live_clients.discard(self)
        return drained

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- internals -------------------------------------------------------------------------
    def _reset_sender(self):
        """(Re)create the queue and thread state; also used in a forked child."""
        self._queue: queue.Queue = queue.Queue(maxsize=self.max_queue)
        self._pending = 0
        self._pending_cond = threading.Condition()
        self._flush_requested = threading.Event()
        self._abort = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._pid = os.getpid()
        self._scores = ScoreSender(self, **self.score_options)
        self.shadows = Shadower(self, workers=self.shadow_workers)  # its counters, rng, spent_today()

    def _count(self, name: str, n: int = 1):
        with self._counts_lock:
            self._counts[name] += n

    def _enqueue(self, data: bytes) -> bool:
        if self._closed or not self.enabled:
            self._count("dropped")
            return False
        if self._pid != os.getpid():  # forked: the parent's thread does not exist here
            self._reset_sender()
        self._ensure_thread()
        with self._pending_cond:
            self._pending += 1
        try:
            self._queue.put_nowait(data)
        except queue.Full:
            self._finish(1)
            self._count("dropped")
            return False
        return True

    def _ensure_thread(self):
        if self._thread is not None and self._thread.is_alive():
            return
        with self._thread_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="costwatch-sender", daemon=True)
                self._thread.start()

    def _wake(self):
        try:
            self._queue.put_nowait(_WAKE)
        except queue.Full:
            pass  # the sender is busy with a full queue and will see the flag anyway

    def _finish(self, n: int):
        with self._pending_cond:
            self._pending -= n
            if self._pending <= 0:
                self._pending_cond.notify_all()

    def _run(self):
        batch: list[bytes] = []
        batch_bytes = 0
        opened_at = 0.0
        while True:
            # Idle: block until an event or a wake-up (flush, close) arrives; no polling.
            wait = None if not batch else max(0.0, opened_at + self.flush_interval - time.monotonic())
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = None
            if item is not None and item is not _WAKE:
                if batch and batch_bytes + len(item) > MAX_BODY_BYTES:
                    self._deliver(batch)
                    batch, batch_bytes = [], 0
                if not batch:
                    opened_at = time.monotonic()
                batch.append(item)
                batch_bytes += len(item) + 1
            due = batch and (len(batch) >= self.batch_size or time.monotonic() >= opened_at + self.flush_interval
                             or (self._flush_requested.is_set() and self._queue.empty()))
            if due:
                self._deliver(batch)
                batch, batch_bytes = [], 0
            if not batch and self._queue.empty():
                self._flush_requested.clear()
                if self._abort.is_set():
                    return

    def _deliver(self, batch: list[bytes]):
        try:
            self._post_with_retries(batch)
        except Exception:  # never let the sender thread die
            logger.exception("costwatch: unexpected error while sending %d events", len(batch))
            self._count("failed", len(batch))
        finally:
            self._finish(len(batch))

    def _post_with_retries(self, batch: list[bytes]):
        attempt = 0
        while True:
            try:
                status, body = self._post(batch)
            except RetryableError as exc:
                if attempt >= self.max_retries or self._abort.is_set():
                    logger.warning("costwatch: giving up on %d events after %d attempts: %s",
                                   len(batch), attempt + 1, exc)
                    self._count("failed", len(batch))
                    return
                delay = self._backoff(attempt, exc.retry_after)
                logger.info("costwatch: %s; retrying %d events in %.2fs", exc, len(batch), delay)
                attempt += 1
                self._count("retried")
                if self._abort.wait(delay):
                    self._count("failed", len(batch))
                    return
                continue
            self._handle_response(batch, status, body)
            return

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # Honour the server: wait at least Retry-After, plus a little jitter so that
            # many clients told the same time do not all come back at once.
            base = min(retry_after, self.max_retry_after)
            return base + random.uniform(0, min(1.0, base * 0.1))
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** attempt))
        return random.uniform(ceiling / 2, ceiling)  # "equal jitter"

    def _post(self, batch: list[bytes], url: str | None = None, raw: bool = False) -> tuple[int, bytes]:
        body = batch[0] if raw else b'{"events":[' + b",".join(batch) + b"]}"
        return post_json(url or self.url, body, api_key=self.api_key, timeout=self.timeout, gzip=self.gzip)

    def _handle_response(self, batch: list[bytes], status: int, body: bytes):
        try:
            result = json.loads(body or b"{}")
        except ValueError:
            result = {}
        if not isinstance(result, dict):
            result = {}
        if status == 413 and len(batch) > 1:
            half = len(batch) // 2
            self._post_with_retries(batch[:half])
            self._post_with_retries(batch[half:])
            return
        if 200 <= status < 300 or (status == 400 and "rejected" in result):
            self._count("sent", int(result.get("accepted", 0)) + int(result.get("duplicates", 0)))
            self._count("duplicates", int(result.get("duplicates", 0)))
            rejected = int(result.get("rejected", 0))
            if rejected:
                self._count("rejected", rejected)
                for error in (result.get("errors") or [])[:5]:
                    logger.warning("costwatch rejected event %s: %s %s: %s", error.get("event_id"),
                                   error.get("field"), error.get("code"), error.get("message"))
            return
        # Any other 4xx is permanent (bad key, missing scope, body refused): retrying cannot help.
        self._count("failed", len(batch))
        errors = result.get("errors") or [{"message": body[:200].decode("utf-8", "replace")}]
        logger.warning("costwatch: HTTP %d, %d events not stored: %s", status, len(batch),
                       "; ".join(str(e.get("message")) for e in errors[:3]))


def _after_fork_in_child():
    for client in list(_live_clients):
        client._reset_sender()


def _close_all_at_exit():
    for client in list(_live_clients):
        try:
            client.close()
        except Exception:
            logger.warning("costwatch: error while flushing at exit", exc_info=True)


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
