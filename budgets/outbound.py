"""Outbound HTTP for alert channels (Slack, webhooks, the Test button): docs/security.md#outbound.

healthchecks checks each address in curl's open-socket callback; this does the same with
urllib3's connection classes:
- The address is checked when the socket connects, after DNS. The host name is resolved
  once, here, and the socket connects to the very address that was checked, so a name that
  answers a public address to a check and 127.0.0.1 to the connection (DNS rebinding)
  cannot slip past. Loopback, private, link-local (cloud metadata), multicast and reserved
  addresses are refused unless `WEBHOOK_ALLOW_PRIVATE_IPS` is true.
- Redirects are not followed: nothing here reads a Location header.
- One total deadline per send (`DELIVERY_TIMEOUT_SECONDS` [10]) covers DNS, connect, TLS,
  the request and the answer: a watchdog shuts the socket down when it passes, so a
  receiver that trickles one byte at a time cannot hold a worker.
- At most 64 KB of the answer is read and none of it is returned: callers get the status.
"""

import concurrent.futures
import ipaddress
import socket
import ssl
import threading
import time
from http.client import HTTPException
from urllib.parse import urlsplit

import certifi
from django.conf import settings
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError as Urllib3Error

MAX_ANSWER_BYTES = 64 * 1024
_RESOLVER = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="outbound-dns")


class OutboundError(Exception):
    def __init__(self, message: str, *, permanent: bool):
        super().__init__(message)
        self.message = message
        self.permanent = permanent


def address_is_public(address: str) -> bool:
    """False for loopback, private, link-local, multicast, reserved and unspecified addresses
    (IPv4 written inside IPv6, `::ffff:127.0.0.1` or 6to4, is judged as the IPv4 it carries)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6:
        ip = ip.ipv4_mapped or ip.sixtofour or ip
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                                 or ip.is_reserved or ip.is_unspecified)


class _Deadline:
    """The send's total time limit; when it passes, every socket it watches is shut down."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0 or self.expired:
            raise OutboundError("timed out", permanent=False)
        return left

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def cancel(self) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not connected yet, or already closed: either way it can no longer wait


def _resolve(host: str, port: int, deadline: _Deadline) -> list:
    future = _RESOLVER.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        return future.result(timeout=deadline.remaining())
    except concurrent.futures.TimeoutError:
        raise OutboundError("timed out resolving the host", permanent=False) from None
    except (socket.gaierror, UnicodeError):
        raise OutboundError(f"could not resolve {host}", permanent=False) from None


def guarded_connect(host: str, port: int, *, deadline: _Deadline, allow_private: bool) -> socket.socket:
    """Resolve `host` once and connect to the first address allowed, checked right before the connect."""
    refused, failure = None, None
    for family, socktype, proto, _name, sockaddr in _resolve(host, port, deadline):
        if not allow_private and not address_is_public(sockaddr[0]):
            refused = sockaddr[0]
            continue
        sock = socket.socket(family, socktype, proto)
        deadline.watch(sock)
        try:
            sock.settimeout(deadline.remaining())
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            failure = exc
    if failure is None and refused is not None:
        raise OutboundError(f"refused: {host} resolves to {refused}, a loopback, private, link-local, multicast "
                            "or reserved address (WEBHOOK_ALLOW_PRIVATE_IPS=true allows it)", permanent=True)
    if deadline.expired:
        raise OutboundError("timed out", permanent=False)
    raise OutboundError(f"connection failed: {failure.__class__.__name__ if failure else 'no address'}",
                        permanent=False)


class _Guarded:
    deadline: _Deadline
    allow_private: bool

    def _new_conn(self) -> socket.socket:
        return guarded_connect(self._dns_host, self.port, deadline=self.deadline, allow_private=self.allow_private)


class GuardedHTTPConnection(_Guarded, HTTPConnection):
    pass


class GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


def post(url: str, *, body: bytes, headers: dict) -> int:
    """POST `body` to `url` under the rules above; returns the status code or raises OutboundError."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise OutboundError("the URL's port is not a number from 0 to 65535", permanent=True) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundError("not an http(s) URL", permanent=True)
    deadline = _Deadline(settings.DELIVERY_TIMEOUT_SECONDS)
    if parts.scheme == "https":
        connection = GuardedHTTPSConnection(parts.hostname, port, timeout=settings.DELIVERY_TIMEOUT_SECONDS,
                                            ca_certs=certifi.where())
    else:
        connection = GuardedHTTPConnection(parts.hostname, port, timeout=settings.DELIVERY_TIMEOUT_SECONDS)
    connection.deadline, connection.allow_private = deadline, settings.WEBHOOK_ALLOW_PRIVATE_IPS
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers=headers, preload_content=False)
        response = connection.getresponse()
        response.read(MAX_ANSWER_BYTES, decode_content=False)  # at most 64 KB, then hang up
        return response.status
    except OutboundError:
        raise
    except ssl.SSLCertVerificationError:
        raise OutboundError(f"TLS certificate of {parts.hostname} not trusted", permanent=False) from None
    except (OSError, HTTPException, Urllib3Error) as exc:
        if deadline.expired:
            raise OutboundError("timed out", permanent=False) from None
        raise OutboundError(f"connection failed: {exc.__class__.__name__}", permanent=False) from None
    finally:
        deadline.cancel()
        connection.close()
