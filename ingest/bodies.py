"""Request bodies of the events API and the OTLP endpoint: media type, Content-Encoding and
size limits, refusing more than a limit at every stage (read, compressed, inflated)."""

import zlib

READ_CHUNK_BYTES = 256 * 1024
MIB = 1024 * 1024


class BodyError(Exception):
    """A request refused for its body (or, in OTLP, anything else): status, code and message."""

    def __init__(self, status_code: int, code: str, message: str, *, field=None, headers=None):
        super().__init__(message)
        self.status_code, self.code, self.message = status_code, code, message
        self.field, self.headers = field, headers or {}


def media_type(content_type: str) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _size(limit: int) -> str:
    return f"{limit // MIB} MB" if limit % MIB == 0 else f"{limit} bytes"


def body_read(django_request, *, limit: int, compressed_limit: int, encodings=("gzip",)) -> bytes:
    """The body, inflated per Content-Encoding (`encodings`: gzip and/or deflate), at most
    `limit` bytes after inflation and `compressed_limit` bytes on the wire when compressed."""
    encoding = (django_request.META.get("HTTP_CONTENT_ENCODING") or "identity").strip().lower()
    if encoding != "identity" and encoding not in encodings:
        raise BodyError(415, "unsupported_encoding",
                        f"Content-Encoding {encoding!r} is not supported; use {' or '.join(encodings)}")
    wire_limit, message = ((limit, f"the body is over {_size(limit)}") if encoding == "identity"
                           else (compressed_limit, f"the compressed body is over {_size(compressed_limit)}"))
    declared = django_request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > wire_limit:
        raise BodyError(413, "too_large", message)
    chunks, size = [], 0
    while chunk := django_request.read(min(READ_CHUNK_BYTES, wire_limit + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > wire_limit:  # never reads more than one byte past the limit
            raise BodyError(413, "too_large", message)
    body = b"".join(chunks)
    return body if encoding == "identity" else _inflate(body, encoding, limit)


def _inflate(body: bytes, encoding: str, limit: int) -> bytes:
    # gzip: wbits 31; HTTP "deflate" is zlib-wrapped (wbits 15), some senders use raw deflate (-15).
    error = "it is not valid"
    for wbits in ((31,) if encoding == "gzip" else (15, -15)):
        inflater = zlib.decompressobj(wbits=wbits)
        try:
            data = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            error = str(exc)
            continue
        if len(data) > limit or inflater.unconsumed_tail:
            raise BodyError(413, "too_large", f"the body is over {_size(limit)} after decompression")
        if inflater.eof:
            return data
        error = "it is truncated"
    raise BodyError(400, f"invalid_{encoding}", f"the body is not valid {encoding}: {error}")
