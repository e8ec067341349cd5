"""Idle keep-alive connections outlive the clients' and proxies' own idle timeouts.

A client (httpx, a browser, a TLS-terminating proxy) reuses an idle connection until its own idle
timeout; if the server closes idle connections first, a request sent just as the server closes
fails with "Server disconnected without sending a response" (seen in ``bench/load.py``: httpx
keeps idle connections 5 s, uvicorn closed them after 5 s). The server must keep them longer:
nginx's ``keepalive_timeout`` defaults to 75 s, httpx's ``keepalive_expiry`` to 5 s, and AWS load
balancers' idle timeout to 60 s, so Rollcall keeps idle connections 65 s by default
(``ROLLCALL_KEEP_ALIVE_SECONDS``)."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: rollcall\r\n\r\n"


def _connect(base: str) -> socket.socket:
    address = urlsplit(base)
    connection = socket.create_connection((address.hostname, address.port), timeout=10)
    connection.sendall(REQUEST)
    assert _response(connection).startswith(b"HTTP/1.1 200")
    return connection


def _response(connection: socket.socket) -> bytes:
    """One whole response (headers, then ``Content-Length`` bytes of body; the server may
    write them separately); b"" when the server closed the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


def _still_open(connection: socket.socket) -> bool:
    """A second request on the same connection is answered (a closed one reads b"")."""
    try:
        connection.sendall(REQUEST)
        return _response(connection).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def test_an_idle_connection_is_kept_longer_than_a_client_keeps_it(rollcall_process):
    server = rollcall_process("serve", "--no-worker")
    connection = _connect(server.url)
    time.sleep(6)  # longer than httpx's 5 s keepalive_expiry and uvicorn's 5 s default
    assert _still_open(connection)
    connection.close()


def test_the_idle_time_is_configurable(rollcall_process):
    server = rollcall_process("serve", "--no-worker", env={"ROLLCALL_KEEP_ALIVE_SECONDS": "1"})
    connection = _connect(server.url)
    time.sleep(2.5)
    assert not _still_open(connection)
    connection.close()
