"""Loopback ports for the embedded servers: is one free, and which ones to try."""

from __future__ import annotations

import socket

HOST = "127.0.0.1"
# Tries before giving up when another process keeps taking the port picked.
PORT_ATTEMPTS = 3


def port_is_free(port: int, host: str = HOST) -> bool:
    """True when a server could listen on host:port now (TIME_WAIT leftovers do not count)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Servers bind with SO_REUSEADDR, so must the probe.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts a TCP connection on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def candidate_ports(preferred: int | None) -> list[int]:
    """The preferred port when free, else a free one; then spares in case it gets taken."""
    first = preferred if preferred is not None and port_is_free(preferred) else free_port()
    return [first] + [free_port() for _ in range(PORT_ATTEMPTS - 1)]
