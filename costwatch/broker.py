"""The quickstart's broker: kombu's filesystem transport, with atomic writes.

kombu's filesystem channel creates a message file under its final name and then writes
it, and rewrites an exchange's binding table in place ("wb" truncates it first). A worker
or beat polling the same folders can read either file in between, get an empty payload
and stop with "Unrecoverable error: JSONDecodeError" (the symptom of celery/kombu#1551;
`make run` died of it after a few minutes). Here both are written under a temporary name
and renamed into place, which is atomic on one file system, so readers only ever see
whole files; binding updates are serialised by a lock file. Redis remains the production
broker.
"""

import os
import uuid
from contextlib import contextmanager
from time import monotonic

from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads


def _write_atomically(path: str, data: bytes) -> None:
    partial = f"{path}.{uuid.uuid4().hex}.partial"  # ends in neither ".msg" nor ".exchange"
    with open(partial, "wb") as handle:
        handle.write(data)
    os.replace(partial, path)


@contextmanager
def _exclusive(path: str):
    with open(path, "ab") as handle:
        filesystem.lock(handle, filesystem.LOCK_EX)
        try:
            yield
        finally:
            filesystem.unlock(handle)


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        try:
            _write_atomically(final, str_to_bytes(dumps(payload)))
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(exist_ok=True)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        try:
            with _exclusive(f"{file}.lock"):
                bindings = []
                if file.exists():
                    bindings = [filesystem.exchange_queue_t(*q) for q in loads(bytes_to_str(file.read_bytes()))]
                if binding not in bindings:
                    bindings.insert(0, binding)
                    _write_atomically(str(file), str_to_bytes(dumps(bindings)))
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot open {file}") from exc


class Transport(filesystem.Transport):
    Channel = Channel
