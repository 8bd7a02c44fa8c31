"""channels.base.HttpClient — the one HTTP helper every platform channel uses — against a real
loopback server. Rows of (platform answer → outcome), following ../shared/channels.md's error
shapes: Weibo's non-200 + error_code, Douyin's and WeChat's HTTP 200 with a code in the body,
WordPress' real 4xx, 429 with Retry-After and 5xx (transient), a refused connection (transient,
nothing was sent) and a timeout after the request was sent (outcome unknown, never re-sent).
Codes a channel must treat specially (Douyin "busy", WeChat token expiry) arrive as the typed
error with the platform's code; deciding to retry or refresh is the channel's job."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from channels.base import (
    USER_AGENT,
    HttpClient,
    OutcomeUnknownError,
    PermanentChannelError,
    TransientChannelError,
)

ANSWERS: dict[str, tuple[int, dict[str, str], object, float]] = {}  # path -> (status, headers, body, delay)
SEEN: list[dict[str, str]] = []


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        SEEN.append(dict(self.headers))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, headers, body, delay = ANSWERS[self.path]
        time.sleep(delay)
        payload = json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_args) -> None:  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def base_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


ROWS = [
    # (id, error shape, status, headers, body, expected exception or None, expected code, retry_after)
    ("weibo-ok", "weibo", 200, {}, {"id": 1, "idstr": "1"}, None, None, None),
    ("weibo-duplicate", "weibo", 400, {}, {"request": "/2/statuses/share.json", "error_code": "20019",
                                          "error": "repeated weibo text"}, PermanentChannelError, "20019", None),
    ("weibo-expired-token", "weibo", 403, {}, {"error_code": 21327, "error": "expired_token"},
     PermanentChannelError, "21327", None),
    ("douyin-ok", "douyin", 200, {}, {"data": {"error_code": 0, "item_id": "x"}, "extra": {"error_code": 0}},
     None, None, None),
    ("douyin-bad-parameter-in-body", "douyin", 200, {}, {"data": {"error_code": 2100005, "description": "bad param"},
                                                         "extra": {"error_code": 2100005, "logid": "l"}},
     PermanentChannelError, "2100005", None),
    ("wechat-ok", "wechat", 200, {}, {"errcode": 0, "errmsg": "ok", "media_id": "m"}, None, None, None),
    ("wechat-ip-not-whitelisted", "wechat", 200, {}, {"errcode": 40164, "errmsg": "invalid ip"},
     PermanentChannelError, "40164", None),
    ("wordpress-auth", "wordpress", 401, {}, {"code": "rest_not_logged_in", "message": "no", "data": {"status": 401}},
     PermanentChannelError, "rest_not_logged_in", None),
    ("rate-limited", "weibo", 429, {"Retry-After": "17"}, {}, TransientChannelError, "429", 17.0),
    ("server-error", "wechat", 503, {}, {}, TransientChannelError, "503", None),
]


@pytest.mark.parametrize("case,shape,status,headers,body,error,code,retry_after", ROWS, ids=[r[0] for r in ROWS])
def test_platform_answers_map_to_typed_outcomes(base_url, case, shape, status, headers, body, error, code,
                                                retry_after):
    ANSWERS[f"/{case}"] = (status, headers, body, 0.0)
    client = HttpClient(base_url, error_shape=shape, timeout=(2.0, 5.0))
    if error is None:
        assert client.request("POST", f"/{case}", data={"status": "x"}) == body
        assert SEEN[-1]["User-Agent"] == USER_AGENT
        return
    with pytest.raises(error) as raised:
        client.request("POST", f"/{case}", data={"status": "x"})
    assert raised.value.code == code
    if retry_after is not None:
        assert raised.value.retry_after == retry_after


def test_a_refused_connection_is_transient_because_nothing_was_sent():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = HttpClient(f"http://127.0.0.1:{port}", timeout=(1.0, 1.0))
    with pytest.raises(TransientChannelError, match="connection failed"):
        client.request("POST", "/2/statuses/share.json", sends_post=True)


@pytest.mark.parametrize("sends_post,error", [(True, OutcomeUnknownError), (False, TransientChannelError)],
                         ids=["post-outcome-unknown", "read-only-call-transient"])
def test_a_timeout_after_sending_is_unknown_only_for_the_post_itself(base_url, sends_post, error):
    ANSWERS["/slow"] = (200, {}, {"id": 1}, 1.5)  # the platform records it, then answers too late
    client = HttpClient(base_url, error_shape="weibo", timeout=(1.0, 0.5))
    with pytest.raises(error):
        client.request("POST", "/slow", sends_post=sends_post)


def test_the_throttle_spaces_requests(base_url):
    ANSWERS["/fast"] = (200, {}, {"ok": True}, 0.0)
    client = HttpClient(base_url, min_interval=0.3)
    started = time.monotonic()
    for _ in range(3):
        client.request("POST", "/fast")
    assert time.monotonic() - started >= 0.6
