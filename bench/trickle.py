"""Slow clients: sockets that send a request's headers and then its body a byte a second."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SOCKETS = 50
# The two routes that once read their body inside the handler, after taking a session.
PATHS = ("/v1/auth/token", "/activate")


def _open(port: int, path: str) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port))
    connection.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n".encode()
    )
    return connection


@contextmanager
def trickling(port: int, count: int = SOCKETS) -> Iterator[None]:
    """`count` slow bodies on the server at `port` for as long as the block runs."""
    sockets = [_open(port, PATHS[i % len(PATHS)]) for i in range(count)]
    stop = threading.Event()

    def drip() -> None:
        while not stop.wait(1):
            for connection in sockets:
                try:
                    connection.send(b"x")
                except OSError:  # refused at its deadline: the server closed it
                    continue

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        yield
    finally:
        stop.set()
        dripper.join()
        for connection in sockets:
            connection.close()
