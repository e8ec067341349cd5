"""One listening socket per ``rollcall serve --workers N`` process (``SO_REUSEPORT``).

uvicorn binds one socket and every worker accepts from it; asyncio accepts every pending
connection per wake-up, and a keep-alive connection stays with the worker that accepted it,
so the first worker to wake took most of a client's connections (issue 15: of 120 requests
over 16 connections, 114 / 6 / 0 / 0 by 4 workers). With a socket of its own in one
``SO_REUSEPORT`` group per worker, the kernel spreads new connections over the workers.

The parent binds the group's first socket and never listens on it (so it is given no
connections); each worker binds a twin of it as it starts (:class:`BalancedProcess`). A socket
handed over with ``--fd`` that is already listening, or has no ``SO_REUSEPORT``, is shared as
before.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from uvicorn.supervisors import multiprocess


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """The group's first socket, bound to ``host:port`` (not listening).

    :raises OSError: the port is in use, also by another group (checked with a plain bind
        first, so a second server on the port is refused, as without the group).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as plain:
        plain.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        plain.bind((host, port))
        port = plain.getsockname()[1]
    return _bound(family, (host, port))


def _bound(family: int, address: tuple[Any, ...]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.set_inheritable(True)
    return sock


def own_socket(inherited: socket.socket) -> socket.socket:
    """This worker's socket: a twin in the group of ``inherited`` (which is closed here), or
    ``inherited`` itself when it is no group's (shared by the workers)."""
    # the object uvicorn passes may carry a wrong family (``socket.fromfd(fd, AF_UNIX, ...)``):
    # a socket built from the descriptor reads the real one
    with socket.socket(fileno=os.dup(inherited.fileno())) as real:
        grouped = real.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        listening = real.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        if real.type != socket.SOCK_STREAM or not grouped or listening:
            return inherited
        twin = _bound(real.family, real.getsockname())
    inherited.close()
    return twin


class BalancedProcess(multiprocess.Process):
    """A uvicorn worker process that serves on a socket of its own (:func:`own_socket`)."""

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover
        super().target([own_socket(sock) for sock in sockets or []])


def balance_workers() -> None:
    """Make uvicorn's supervisor start (and restart) :class:`BalancedProcess` workers: it
    builds its processes from the module's ``Process`` (no hook of its own for this)."""
    multiprocess.Process = BalancedProcess  # type: ignore[misc]
