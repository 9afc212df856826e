"""A small OpenAI-compatible server on loopback that misbehaves on purpose, for the retry tests.

The first path segment picks the behaviour (`/ok/v1/chat/completions`, `/garbage/v1/...`);
`/flaky-<k>/...` fails k times with 500 then answers; every request is recorded with the
time it arrived and its headers, so tests can check what was retried and when.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    path: str
    at: float
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class MisbehavingServer:
    server: ThreadingHTTPServer
    seen: list[Seen] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def base(self, behaviour: str) -> str:
        return f"{self.url}/{behaviour}/v1"

    def hits(self, behaviour: str) -> list[Seen]:
        return [s for s in self.seen if s.path.startswith(f"/{behaviour}/")]


def _answer(body: dict[str, Any], text: str = "A") -> dict[str, Any]:
    n = int(body.get("n", 1))
    if "messages" in body:
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "logprobs": {
                    "content": [
                        {
                            "token": text,
                            "logprob": -0.1,
                            "top_logprobs": [
                                {"token": text, "logprob": -0.1},
                                {"token": "B", "logprob": -2.4},
                            ],
                        }
                    ]
                }
                if body.get("logprobs")
                else None,
            }
            for i in range(n)
        ]
    else:
        choices = [{"index": i, "text": text, "finish_reason": "length"} for i in range(n)]
    return {
        "id": "x",
        "model": "misbehaving",
        "choices": choices,
        "usage": {"prompt_tokens": 11, "completion_tokens": n, "total_tokens": 11 + n},
    }


def start(slow_seconds: float = 3.0) -> MisbehavingServer:
    state: MisbehavingServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            behaviour = self.path.split("/")[1]
            with state.lock:
                state.seen.append(Seen(self.path, time.monotonic(), dict(self.headers), body))
                state.counts[behaviour] += 1
                count = state.counts[behaviour]
            ok = json.dumps(_answer(body)).encode()
            if behaviour == "ok":
                self._send(200, ok)
            elif behaviour == "single-choice":  # as llama.cpp's server: one choice whatever n is
                self._send(200, json.dumps(_answer({**body, "n": 1})).encode())
            elif behaviour == "garbage":
                self._send(200, b'{"choices": [ this is not json')
            elif behaviour == "shapeless":
                self._send(200, b'{"result": "A"}')
            elif behaviour == "rate-limited-once":
                if count == 1:
                    self._send(429, b'{"error": "slow down"}', {"Retry-After": "1"})
                else:
                    self._send(200, ok)
            elif behaviour == "rate-limited-long":
                self._send(429, b'{"error": "come back tomorrow"}', {"Retry-After": "86400"})
            elif behaviour.startswith("flaky-"):
                if count <= int(behaviour.split("-")[1]):
                    self._send(500, b'{"error": "internal"}')
                else:
                    self._send(200, ok)
            elif behaviour == "down":
                self._send(503, b'{"error": "overloaded"}')
            elif behaviour == "slow":
                time.sleep(slow_seconds)
                self._send(200, ok)
            elif behaviour == "unauthorized":
                # Echoes the key, as some servers do: the backend must not repeat it.
                key = self.headers.get("Authorization", "")
                self._send(401, json.dumps({"error": f"bad key {key}"}).encode())
            elif behaviour == "one-bad":
                prompt = json.dumps(body.get("messages") or body.get("prompt"))
                if "poison" in prompt:
                    self._send(500, b'{"error": "cannot"}')
                else:
                    self._send(200, ok)
            else:
                self._send(404, b'{"error": "no such behaviour"}')

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = MisbehavingServer(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return state
