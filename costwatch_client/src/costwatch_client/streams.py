"""A pass-through wrapper for SDK streams that records the call's event when the stream ends.

The app iterates the wrapper exactly as it would the SDK's stream; the wrapper keeps the
chunks, measures time to first chunk and total latency, and on exhaustion, `close()` or
leaving a `with` block sends one event built from them (usage from the final chunk, or
estimated and marked `usage_estimated` when the stream carried none).
"""

from __future__ import annotations

import contextlib
import logging
import time

from .sdk import event_from_response

logger = logging.getLogger("costwatch_client")


class RecordedStream:
    def __init__(self, client, stream, *, request_kwargs=None, started=None, fields=None):
        self._client = client
        self._stream = stream
        self._request_kwargs = request_kwargs
        self._fields = dict(fields or {})
        self._started = started if started is not None else time.monotonic()
        self._first_at = None
        self._chunks: list = []
        self._iterator = None
        self._recorded = False
        self.event_id: str | None = None

    # --- sync iteration --------------------------------------------------------------------
    def __iter__(self):
        return self

    def __next__(self):
        if self._iterator is None:
            self._iterator = iter(self._stream)
        with self._watching_end():
            return self._keep(next(self._iterator))

    # --- async iteration -------------------------------------------------------------------
    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._iterator is None:
            self._iterator = self._stream.__aiter__()
        with self._watching_end():
            return self._keep(await self._iterator.__anext__())

    # --- lifecycle -------------------------------------------------------------------------
    def close(self):
        self._record()
        close = getattr(self._stream, "close", None)
        if callable(close):
            return close()
        return None

    async def aclose(self):
        self._record()
        close = getattr(self._stream, "aclose", None) or getattr(self._stream, "close", None)
        if callable(close):
            result = close()
            if hasattr(result, "__await__"):
                await result

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self._record(error=exc_type is not None and not issubclass(exc_type, GeneratorExit))
        exit_ = getattr(self._stream, "__exit__", None)
        return exit_(exc_type, exc, tb) if callable(exit_) else False

    async def __aenter__(self):
        return self

    async def __aexit__(self, exc_type, exc, tb):
        self._record(error=exc_type is not None)
        exit_ = getattr(self._stream, "__aexit__", None)
        return await exit_(exc_type, exc, tb) if callable(exit_) else False

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._stream, name)

    # --- internals -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _watching_end(self):
        """Records the event when the wrapped stream ends: normally on (Async)StopIteration,
        as an error on any other exception. The exception still reaches the app."""
        try:
            yield
        except (StopIteration, StopAsyncIteration):
            self._record()
            raise
        except Exception:
            self._record(error=True)
            raise

    def _keep(self, chunk):
        if self._first_at is None:
            self._first_at = time.monotonic()
        self._chunks.append(chunk)
        return chunk

    def _record(self, *, error=False):
        if self._recorded:
            return
        self._recorded = True
        if not self._chunks:
            logger.warning("costwatch: a stream ended before its first chunk; nothing to record")
            return
        fields = dict(self._fields)
        fields.setdefault("latency_ms", int((time.monotonic() - self._started) * 1000))
        fields.setdefault("ttft_ms", int((self._first_at - self._started) * 1000))
        if error:
            fields.setdefault("status", "error")
        try:
            event = event_from_response(self._chunks, request_kwargs=self._request_kwargs, **fields)
        except Exception:
            logger.warning("costwatch: could not read usage from a stream", exc_info=True)
            self._client._count("dropped")
            return
        self.event_id = self._client.send(event)
