"""`track(...)`: defaults for the events recorded inside a block or a decorated function.

Uses contextvars, so it is safe across threads and asyncio tasks: each request handler
sees only its own `track` block.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import time

_current: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("costwatch_track", default=None)


class _Scope:
    """One active `track` block: its fields and the clock for latency."""

    def __init__(self, fields: dict, parent: _Scope | None):
        fields = dict(fields)
        self.shadow = fields.pop("shadow", None)  # track(shadow=...): not an event field
        self.shadow_owner = self if self.shadow else (parent.shadow_owner if parent else None)
        self.on_exit = None  # set by the shadow helper: starts the block's Pro call
        merged = dict(parent.fields) if parent else {}
        attributes = {**(merged.get("attributes") or {}), **(fields.get("attributes") or {})}
        merged.update({k: v for k, v in fields.items() if v is not None})
        if attributes:
            merged["attributes"] = attributes
        self.fields = merged
        self.mark = time.monotonic()

    def elapsed_ms(self) -> int:
        """Time since the block started or since the previous call recorded in it."""
        now = time.monotonic()
        elapsed = int((now - self.mark) * 1000)
        self.mark = now
        return elapsed


class track:  # noqa: N801 (used like a function: `with track(...)`, `@track(...)`)
    """Set event fields (feature, role, request_id, route_reason, environment, attributes,
    ...) for every event recorded inside; latency_ms is measured when the event lacks it.
    `shadow={...}` shadows the block's last primary call to Pro after the block exits
    (docs/savings.md).

    >>> with track(feature="ticket-triage", role="triage", request_id=req.id):
    ...     cw.record(client.chat.completions.create(**kwargs), request_kwargs=kwargs)
    """

    def __init__(self, **fields):
        self._fields = fields
        self._tokens: list[contextvars.Token] = []

    def __enter__(self):
        self._tokens.append(_current.set(_Scope(self._fields, _current.get())))
        return self

    def __exit__(self, *exc):
        scope = _current.get()
        _current.reset(self._tokens.pop())
        if scope is not None and scope.on_exit is not None:
            start, scope.on_exit = scope.on_exit, None
            try:
                start()
            except Exception:  # the shadow helper never raises into the block's caller
                pass
        return False

    async def __aenter__(self):
        return self.__enter__()

    async def __aexit__(self, *exc):
        return self.__exit__(*exc)

    def __call__(self, fn):
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args, **kwargs):
                with track(**self._fields):
                    return await fn(*args, **kwargs)
            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with track(**self._fields):
                return fn(*args, **kwargs)
        return wrapper


def shadow_scope() -> _Scope | None:
    """The innermost active block opened with `track(shadow=...)`, if any."""
    scope = _current.get()
    return scope.shadow_owner if scope else None


def current_fields() -> dict:
    scope = _current.get()
    return dict(scope.fields) if scope else {}


def apply_context(event: dict, *, defaults: dict | None = None) -> dict:
    """The event with the client's defaults, then the active track() fields, under its own."""
    scope = _current.get()
    base = dict(defaults or {})
    if scope is not None:
        base.update(scope.fields)
        if "latency_ms" not in event:
            event["latency_ms"] = scope.elapsed_ms()
    attributes = {**(base.get("attributes") or {}), **(event.get("attributes") or {})}
    merged = {**base, **event}
    if attributes:
        merged["attributes"] = attributes
    return merged
