"""CoreDNS's metrics port handler (netd.dns.metricshttp.handle_head)."""
from __future__ import annotations

import pytest

from netd.dns.metricshttp import handle_head


@pytest.mark.parametrize("head,status,body", [
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b"200 OK", b"m 1\n"),
    (b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", b"200 OK", b"m 1\n"),
    (b"HEAD /metrics HTTP/1.1\r\n\r\n", b"200 OK", b""),
    (b"GET / HTTP/1.1\r\n\r\n", b"404 Not Found", b"404 page not found\n"),
    (b"POST /metrics HTTP/1.1\r\n\r\n", b"405 Method Not Allowed", b"method not allowed\n"),
    (b"garbage\r\n\r\n", b"400 Bad Request", b"bad request\n"),
], ids=["get", "query-string", "head", "not-found", "post", "garbage"])
def test_handle_head(head: bytes, status: bytes, body: bytes) -> None:
    resp = handle_head(head, lambda: "m 1\n")
    first, rest = resp.split(b"\r\n", 1)
    assert first == b"HTTP/1.1 " + status
    assert resp.split(b"\r\n\r\n", 1)[1] == body
    assert b"Content-Length: 4" in rest if status == b"200 OK" else True
