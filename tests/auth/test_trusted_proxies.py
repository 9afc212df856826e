"""X-Forwarded-For counts only from TANDEM_TRUSTED_PROXIES: with none configured (the default)
a client cannot dodge the login rate limit by sending a new address on every try."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.runtime import launcher

LIMIT = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def tandem_serve(**env: str) -> Iterator[str]:
    """`tandem serve` in a subprocess, as deployed (the console script's entry point)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from app.cli import main; main()", "serve", "--port", str(port)],
        env={**os.environ, "TANDEM_LOGIN_ATTEMPTS_PER_MINUTE": str(LIMIT), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "tandem serve did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _attempts(url: str, forwarded_for: list[str]) -> list[int]:
    body = {"email": "someone@example.org", "password": "wrong password"}
    return [
        httpx.post(
            url + "/api/v1/auth/token", json=body, headers={"X-Forwarded-For": ip}, timeout=10
        ).status_code
        for ip in forwarded_for
    ]


def test_forwarded_for_is_ignored_without_trusted_proxies() -> None:
    with tandem_serve(TANDEM_TRUSTED_PROXIES="") as url:
        codes = _attempts(url, [f"203.0.113.{n}" for n in range(LIMIT + 2)])
    assert codes[:LIMIT] == [401] * LIMIT
    assert codes[LIMIT:] == [429, 429]


def test_forwarded_for_from_a_trusted_proxy_names_the_client() -> None:
    with tandem_serve(TANDEM_TRUSTED_PROXIES="127.0.0.1") as url:
        # Each client address has its own budget behind the proxy...
        assert _attempts(url, [f"198.51.100.{n}" for n in range(LIMIT + 2)]) == [401] * (LIMIT + 2)
        # ...and one client is limited whatever it adds in front of the proxy's entry.
        spoofed = [f"10.9.9.{n}, 198.51.100.77" for n in range(LIMIT + 1)]
        assert _attempts(url, spoofed)[-1] == 429


@pytest.mark.parametrize("value", ["proxy.example", "10.0.0.300", "10.0.0.0/33"])
def test_a_trusted_proxy_must_be_an_address_or_network(value: str) -> None:
    with pytest.raises(ValueError, match="TANDEM_TRUSTED_PROXIES"):
        Settings(trusted_proxies=value)


def test_tandem_up_serves_the_web_app_through_tandem_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    spawned: dict[str, list[str]] = {}

    def spawn(self: Any, name: str, argv: list[str], stop: Any) -> None:
        spawned[name] = list(argv)

    def stop(*args: Any) -> None:
        raise launcher._Stop

    monkeypatch.setattr(launcher._Launch, "step", lambda self, what, argv: None)
    monkeypatch.setattr(launcher._Launch, "spawn", spawn)
    monkeypatch.setattr(launcher, "_supervise", stop)
    assert launcher.up("127.0.0.1", _free_port(), with_worker=False) == 0
    web = spawned["web server"]
    assert web[web.index("serve") :][:1] == ["serve"] and "uvicorn" not in " ".join(web)
