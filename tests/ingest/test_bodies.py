"""The body reader shared by the events API and OTLP: encodings and limits at every stage."""

import gzip
import zlib

import pytest
from django.test import RequestFactory

from ingest.bodies import BodyError, body_read

DATA = b'{"events": []}' * 20  # 280 bytes


def request(body: bytes, encoding=None):
    extra = {"HTTP_CONTENT_ENCODING": encoding} if encoding else {}
    return RequestFactory().post("/x", data=body, content_type="application/json", **extra)


def read(body, encoding=None, *, limit=1000, compressed_limit=1000, encodings=("gzip", "deflate")):
    return body_read(request(body, encoding), limit=limit, compressed_limit=compressed_limit, encodings=encodings)


def refusal(*args, **kwargs):
    with pytest.raises(BodyError) as caught:
        read(*args, **kwargs)
    return caught.value.status_code, caught.value.code, caught.value.message


def test_plain_gzip_and_both_kinds_of_deflate_read_back_the_same_bytes():
    raw_deflate = zlib.compressobj(wbits=-15)
    raw = raw_deflate.compress(DATA) + raw_deflate.flush()
    assert read(DATA) == read(gzip.compress(DATA), "gzip") == read(zlib.compress(DATA), "deflate") == DATA
    assert read(raw, "deflate") == DATA


def test_each_limit_is_refused_with_the_stage_it_was_passed_at():
    assert refusal(DATA, limit=100) == (413, "too_large", "the body is over 100 bytes")
    assert refusal(gzip.compress(b"x" * 5000), "gzip") == (
        413, "too_large", "the body is over 1000 bytes after decompression")
    assert refusal(gzip.compress(DATA), "gzip", compressed_limit=10) == (
        413, "too_large", "the compressed body is over 10 bytes")


def test_broken_or_unknown_encodings_are_refused_clearly():
    assert refusal(gzip.compress(DATA)[:-8], "gzip") == (
        400, "invalid_gzip", "the body is not valid gzip: it is truncated")
    assert refusal(b"not gzip at all", "gzip")[:2] == (400, "invalid_gzip")
    assert refusal(b"not deflate", "deflate")[:2] == (400, "invalid_deflate")
    assert refusal(DATA, "br") == (
        415, "unsupported_encoding", "Content-Encoding 'br' is not supported; use gzip or deflate")
    assert refusal(zlib.compress(DATA), "deflate", encodings=("gzip",)) == (
        415, "unsupported_encoding", "Content-Encoding 'deflate' is not supported; use gzip")
