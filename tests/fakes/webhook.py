"""A partner's webhook receiver on loopback, implementing the contract of channels/webhook.py.

* `POST /hooks/fanout`: checks `X-Fanout-Timestamp` (digits, within `tolerance` = 300 s of
  the receiver's clock, shifted by `clock_offset`) and `X-Fanout-Signature` (sha256= hex
  HMAC-SHA256(secret, f"{timestamp}.{raw_body}"), constant-time compare) → 401
  `{"error": …}` when either is missing or wrong; the body must be JSON whose
  `idempotency_key` equals the header (400 otherwise) and, for `story.published`, carry a
  story with id/version/title/label/body_html and media entries with url/mime/bytes/sha256.
* Deduplicates on the idempotency key: the first delivery is stored, counted with
  `record_post(key)` and answered 200 `{"id": "wh-<n>", "url": …}`; a repeat answers
  `duplicate_status` (409 `{"error": "duplicate", "id": …}` by default, or 200 with the same
  id). `deliveries` counts every valid signed POST per key (repeats included).
* `story.retracted` marks the item retracted (404 when the receiver never had it).
* `GET /hooks/fanout/status?idempotency_key=…` signed over f"{timestamp}.{key}" → 200
  `{id, url, state}` or 404.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import Counter
from typing import Any

from tests.fakes.base import FakePlatform, FakeRequest, FakeResponse, route

HOOK_PATH = "/hooks/fanout"
STATUS_PATH = "/hooks/fanout/status"


class FakeWebhookReceiver(FakePlatform):
    def __init__(self, secret: str, *, tolerance: float = 300.0, duplicate_status: int = 409) -> None:
        super().__init__()
        self.secret = secret
        self.tolerance = tolerance
        self.duplicate_status = duplicate_status
        self.clock_offset = 0.0  # seconds the receiver's clock is ahead of ours
        self.items: dict[str, dict[str, Any]] = {}  # idempotency key -> {"id", "body", "state"}
        self.deliveries: Counter[str] = Counter()
        self.rejected: list[str] = []  # why each refused request was refused

    @property
    def hook_url(self) -> str:
        return self.url + HOOK_PATH

    @property
    def status_url(self) -> str:
        return self.url + STATUS_PATH

    def error_body(self, status: int) -> dict[str, Any]:
        return {"error": f"HTTP {status}"}

    def _refuse(self, status: int, reason: str) -> FakeResponse:
        self.rejected.append(reason)
        return FakeResponse(status, {"error": reason})

    def _check_signature(self, req: FakeRequest, message: bytes) -> FakeResponse | None:
        timestamp = req.header("X-Fanout-Timestamp") or ""
        signature = req.header("X-Fanout-Signature") or ""
        if not timestamp or not signature:
            return self._refuse(401, "missing signature headers")
        if not timestamp.isdigit():
            return self._refuse(401, "bad timestamp")
        if abs(time.time() + self.clock_offset - int(timestamp)) > self.tolerance:
            return self._refuse(401, f"timestamp outside the {self.tolerance:g} s window")
        digest = hmac.new(self.secret.encode("utf-8"), timestamp.encode("ascii") + b"." + message, hashlib.sha256)
        if not hmac.compare_digest(signature, "sha256=" + digest.hexdigest()):
            return self._refuse(401, "bad signature")
        return None

    @route("POST", HOOK_PATH)
    def receive(self, req: FakeRequest) -> FakeResponse:
        refused = self._check_signature(req, req.body)
        if refused is not None:
            return refused
        try:
            body = json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return self._refuse(400, "body is not UTF-8 JSON")
        key = body.get("idempotency_key") if isinstance(body, dict) else None
        if not key or key != req.header("X-Fanout-Idempotency-Key"):
            return self._refuse(400, "idempotency key missing or different from the header")
        event = body.get("event")
        if event != req.header("X-Fanout-Event"):
            return self._refuse(400, "event differs from the header")
        with self._lock:
            self.deliveries[key] += 1
            if key in self.items:
                item = self.items[key]
                if self.duplicate_status == 409:
                    return FakeResponse(409, {"error": "duplicate", "id": item["id"]})
                return FakeResponse(200, {"id": item["id"], "url": item["url"], "duplicate": True})
            if event == "story.published":
                problem = _check_published(body)
                if problem:
                    return self._refuse(422, problem)
            elif event == "story.retracted":
                target = self.items.get(body.get("retracts", ""))
                if target is None:
                    return self._refuse(404, "unknown item")
                target["state"] = "retracted"
            else:
                return self._refuse(400, f"unknown event {event!r}")
            n = len(self.items) + 1
            self.items[key] = {"id": f"wh-{n}", "url": f"{self.url}/items/{n}", "body": body, "state": "published"}
            self.record_post(key)
            return FakeResponse(200, {"id": f"wh-{n}", "url": f"{self.url}/items/{n}"})

    @route("GET", STATUS_PATH)
    def status(self, req: FakeRequest) -> FakeResponse:
        key = req.query.get("idempotency_key", "")
        refused = self._check_signature(req, key.encode("utf-8"))
        if refused is not None:
            return refused
        item = self.items.get(key)
        if item is None:
            return FakeResponse(404, {"error": "not found"})
        return FakeResponse(200, {"id": item["id"], "url": item["url"], "state": item["state"]})


def _check_published(body: dict[str, Any]) -> str:
    story = body.get("story")
    if not isinstance(story, dict):
        return "story missing"
    for name in ("id", "version", "title", "label", "body_html", "release_at"):
        if name not in story:
            return f"story.{name} missing"
    media = body.get("media")
    if not isinstance(media, list):
        return "media missing"
    for entry in media:
        for name in ("role", "url", "mime", "bytes", "sha256"):
            if not isinstance(entry, dict) or entry.get(name) in (None, ""):
                return f"media.{name} missing"
        if not str(entry["url"]).startswith(("http://", "https://")):
            return "media.url is not absolute"
    return ""
