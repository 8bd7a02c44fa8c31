"""The loopback HTTP server every platform fake is built on.

A fake platform (tests/fakes/<platform>.py) subclasses `FakePlatform` and declares its routes
with `@route("POST", "/2/statuses/share.json")`; each route gets a parsed `FakeRequest` (query,
headers, JSON, form fields, multipart files) and returns a `FakeResponse`. The fakes follow
../shared/channels.md — HTTP statuses and body error codes included — so an adapter that passes
against a fake would pass against the platform.

What the base adds, for every fake alike:

* **Counting**: `record_post(marker)` counts posts per idempotency marker (what the platform
  would see as "the same post": Weibo's status text, a Douyin video's title …). Tests assert
  `max(fake.posts.values()) == 1` to prove nothing was posted twice.
* **Misbehaviour on demand** (`fake.misbehave(...)`), matched by path prefix, for the next N
  requests: `latency` (sleep before answering), `status` (an HTTP error with the platform's
  error body, e.g. 503), `retry_after` (429 with a Retry-After header), `reset` (close the
  connection without answering, before the handler ran: nothing recorded), `hang_after`
  (run the handler — the post is recorded — then sleep `seconds` before answering, so the
  client times out *after* the platform did the work).
* A request log (`fake.requests`) with method, path, query, headers and field names, for
  assertions on what was sent (and that credentials went only where they belong).

Nothing here knows a platform; the error body of a forced `status` fault comes from the
subclass's `error_body(status)`.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit


@dataclass
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass
class FakeRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)

    def header(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return default

    def param(self, name: str, default: str | None = None) -> str | None:
        """A value from the query, the form or a JSON object body, in that order."""
        if name in self.query:
            return self.query[name]
        if name in self.form:
            return self.form[name]
        if isinstance(self.json, dict) and name in self.json:
            return self.json[name]
        return default


@dataclass
class FakeResponse:
    status: int = 200
    body: Any = None  # JSON-able, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    kind: str  # latency | status | retry_after | reset | hang_after
    path_prefix: str = ""
    times: int = 1
    seconds: float = 0.0
    status: int = 503


def route(method: str, path: str) -> Callable[[Callable], Callable]:
    """Mark a FakePlatform method as the handler of (method, exact path)."""

    def mark(func: Callable) -> Callable:
        func.__fake_route__ = (method.upper(), path)  # type: ignore[attr-defined]
        return func

    return mark


class _Server(ThreadingHTTPServer):
    """A listen backlog like a real front end's (nginx: 511), not socketserver's 5: a burst of
    concurrent posts must not be dropped by the fake before the platform could answer."""

    request_queue_size = 512


class FakePlatform:
    """A platform on 127.0.0.1:<free port>. Use as a context manager or start()/stop()."""

    def __init__(self) -> None:
        self.posts: Counter[str] = Counter()
        self.requests: list[FakeRequest] = []
        self.latency = 0.0
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._routes: dict[tuple[str, str], Callable[[FakeRequest], FakeResponse]] = {}
        for name in dir(type(self)):
            func = getattr(type(self), name, None)
            key = getattr(func, "__fake_route__", None)
            if key:
                self._routes[key] = getattr(self, name)
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakePlatform:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

            def _serve(self) -> None:
                fake._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815 - http.server's naming

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                         name=type(self).__name__).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakePlatform:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "fake not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ------------------------------------------------------------------ test controls

    def misbehave(self, kind: str, *, path: str = "", times: int = 1, seconds: float = 0.0,
                  status: int = 503) -> None:
        if kind not in ("latency", "status", "retry_after", "reset", "hang_after"):
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self._faults.append(Fault(kind, path, times, seconds, status))

    def behave(self) -> None:
        with self._lock:
            self._faults.clear()

    def record_post(self, marker: str) -> int:
        """Count one post under `marker`; returns how many there are now."""
        with self._lock:
            self.posts[marker] += 1
            return self.posts[marker]

    def error_body(self, status: int) -> Any:
        """The platform's error body for a forced HTTP `status` (overridden per platform)."""
        return {"error": f"HTTP {status}"}

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    # ------------------------------------------------------------------ serving

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path_prefix):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        request = FakeRequest(
            method=handler.command, path=parts.path,
            query={k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
            headers=dict(handler.headers.items()), body=body,
        )
        _parse_body(request)
        with self._lock:
            self.requests.append(request)
        if self.latency:
            time.sleep(self.latency)
        fault = self._take_fault(request.path)
        if fault is not None and fault.kind == "latency":
            time.sleep(fault.seconds)
            fault = None
        if fault is not None and fault.kind == "reset":
            _reset(handler)
            return
        if fault is not None and fault.kind == "status":
            _send(handler, FakeResponse(fault.status, self.error_body(fault.status)))
            return
        if fault is not None and fault.kind == "retry_after":
            _send(handler, FakeResponse(429, self.error_body(429), {"Retry-After": f"{fault.seconds:g}"}))
            return
        func = self._routes.get((request.method, request.path))
        if func is None:
            response = FakeResponse(404, self.error_body(404))
        else:
            response = func(request)
        if fault is not None and fault.kind == "hang_after":
            time.sleep(fault.seconds)  # the work is done; the client gives up first
            _reset(handler)
            return
        _send(handler, response)


def _parse_body(request: FakeRequest) -> None:
    ctype = request.header("Content-Type", "") or ""
    if not request.body:
        return
    if ctype.startswith("application/json"):
        request.json = json.loads(request.body.decode("utf-8"))
    elif ctype.startswith("application/x-www-form-urlencoded"):
        request.form = {k: v[-1] for k, v in parse_qs(request.body.decode("utf-8"), keep_blank_values=True).items()}
    elif ctype.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {ctype}\r\n\r\n".encode() + request.body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            payload = part.get_payload(decode=True) or b""
            if filename is not None:
                request.files[name] = UploadedFile(filename, part.get_content_type(), payload)
            else:
                request.form[name] = payload.decode("utf-8")


def _send(handler: BaseHTTPRequestHandler, response: FakeResponse) -> None:
    if isinstance(response.body, bytes):
        payload, ctype = response.body, "application/octet-stream"
    else:
        payload = json.dumps(response.body, ensure_ascii=False).encode("utf-8")
        ctype = "application/json; charset=utf-8"
    try:
        handler.send_response(response.status)
        for name, value in response.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up first


def _reset(handler: BaseHTTPRequestHandler) -> None:
    """Drop the connection without an answer (RST, not a clean FIN where the OS allows)."""
    handler.close_connection = True
    try:
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        handler.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
