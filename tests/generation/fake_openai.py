"""A real local HTTP server that speaks OpenAI's chat-completions protocol, for the endpoint client's tests.

    with FakeOpenAI() as server:            # listens on 127.0.0.1, a free port, in a thread
        server.plan = ["500", "ok"]         # the next requests' behaviours, in order; then `default`
        server.by_text["SLOW"] = "slow"     # any request whose messages contain "SLOW" behaves so, every time
        ... EndpointBackend(base_url=server.base_url, ...) ...
        server.requests                     # every request received: {"path", "headers", "body"}

Behaviours: "ok" (n choices "answer <i>: <last user message>", finish_reason "stop"), "length" (finish_reason
"length"), "slow" (waits `slow_seconds`, then ok), "500", "429" (with Retry-After: 0), "401", "garbage" (200 with a
body that is not JSON), "no-choices" (JSON without choices), "redirect" (302 to `redirect_to`).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(self) -> None:
        self.plan: list[str] = []
        self.by_text: dict[str, str] = {}
        self.default = "ok"
        self.slow_seconds = 5.0
        self.redirect_to = "http://127.0.0.1:9/v1/chat/completions"
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}/v1"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()  # wakes the slow handlers
        self._server.shutdown()
        self._server.server_close()

    def behaviour(self, body: dict) -> str:
        text = json.dumps(body.get("messages", []), ensure_ascii=False)
        with self._lock:
            for marker, behaviour in self.by_text.items():
                if marker in text:
                    return behaviour
            return self.plan.pop(0) if self.plan else self.default

    def record(self, path: str, headers: dict, body: dict | None) -> None:
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "body": body})

    def wait(self, seconds: float) -> None:
        self._closing.wait(seconds)


def completion(body: dict, *, finish_reason: str) -> dict:
    messages = body.get("messages") or [{"content": ""}]
    last = messages[-1].get("content", "")
    n = int(body.get("n") or 1)
    choices = [{"index": i, "message": {"role": "assistant", "content": f"answer {i}: {last}"},
                "finish_reason": finish_reason} for i in range(n)]
    return {"id": "cmpl-fake", "object": "chat.completion", "model": body.get("model"), "choices": choices,
            "usage": {"prompt_tokens": 7, "completion_tokens": 5 * n, "total_tokens": 7 + 5 * n}}


def _handler_for(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # quiet tests

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            fake.record(self.path, dict(self.headers), body)
            if self.path != "/v1/chat/completions" or not isinstance(body, dict):
                self._send(404, b'{"error": {"message": "not found"}}')
                return
            behaviour = fake.behaviour(body)
            if behaviour == "slow":
                fake.wait(fake.slow_seconds)
                behaviour = "ok"
            self._respond(behaviour, body)

        def _respond(self, behaviour: str, body: dict) -> None:
            if behaviour in ("ok", "length"):
                answer = completion(body, finish_reason="stop" if behaviour == "ok" else "length")
                self._send(200, json.dumps(answer).encode())
            elif behaviour == "garbage":
                self._send(200, b"<html>definitely not json")
            elif behaviour == "no-choices":
                self._send(200, b'{"object": "chat.completion", "choices": []}')
            elif behaviour == "redirect":
                self._send(302, b"", {"Location": fake.redirect_to})
            elif behaviour == "429":
                self._send(429, b'{"error": {"message": "slow down"}}', {"Retry-After": "0"})
            else:
                self._send(int(behaviour), b'{"error": {"message": "the fake server was told to fail"}}')

        def _send(self, status: int, payload: bytes, headers: dict | None = None) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

    return Handler
