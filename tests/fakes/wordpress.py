"""A WordPress site's REST API (wp-json/wp/v2) on loopback, as channels.md "Website" describes it.

What it copies from WordPress:

* Application Passwords over Basic auth, checked on every request that carries the header:
  unknown user → 401 `invalid_username`, wrong password → 401 `incorrect_password`; a write
  without any auth → 401 `rest_cannot_create`; a user who may not publish → 403
  `rest_cannot_publish` (`fake.can_publish = False`).
* Errors are real 4xx/5xx with `{"code": "rest_…", "message": "…", "data": {"status": N}}`.
* `POST /wp-json/wp/v2/media` with the raw file as body: needs `Content-Disposition` with a
  filename (400 `rest_upload_no_content_disposition`) and a body (400 `rest_upload_no_data`);
  a type the site does not allow is WordPress' own 500 `rest_upload_sideload_error`.
  `alt_text` / `caption` may come as query parameters. → 201 `{id, source_url, …}`.
* `POST /wp-json/wp/v2/posts` (JSON) → 201 with the post object; bad `status`, unknown
  category/tag ids or a malformed `date_gmt` → 400 `rest_invalid_param`; a `featured_media`
  that is not an attachment → 400 `rest_invalid_featured_media`; empty title, content and
  excerpt → 400 `empty_content`. A duplicate slug is **not** refused: like
  `wp_unique_post_slug` it becomes `slug-2`, `slug-3` … (drafts and pending posts keep theirs),
  which is why the channel looks for its slug first and reconciles.
* `GET /wp-json/wp/v2/posts?slug=a,b&status=any&search=…` (status `any` = every status but
  trash; default `publish`), `DELETE /wp-json/wp/v2/posts/<id>` (trash; `?force=true` deletes;
  trashing again → 410 `rest_already_trashed`; unknown id → 404 `rest_post_invalid_id`; a
  trashed post's slug gets `__trashed` so the slug can be used again), `GET /users/me`.

Posts are counted with `record_post(<requested slug>)`. `misbehave(..., method="POST")` limits
a fault to one HTTP method (GET and POST /posts share a path: the lookup before a create must
pass while the create itself fails).
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tests.fakes.base import FakePlatform, FakeRequest, FakeResponse, route

ALLOWED_UPLOAD_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "video/mp4")
STATUSES = ("publish", "future", "draft", "pending", "private")


def wp_error(status: int, code: str, message: str) -> FakeResponse:
    return FakeResponse(status, {"code": code, "message": message, "data": {"status": status}})


class _Routes(dict):
    """The base's exact (method, path) routes plus regex routes for /posts/<id>."""

    def __init__(self, exact: dict, patterns: list[tuple[str, re.Pattern[str], Callable]]) -> None:
        super().__init__(exact)
        self.patterns = patterns

    def get(self, key: Any, default: Any = None) -> Any:  # type: ignore[override]
        found = super().get(key)
        if found is not None:
            return found
        method, path = key
        for m, pattern, func in self.patterns:
            if m == method and pattern.fullmatch(path):
                return func
        return default


class _RequestLog(list):
    """The base's request log; remembers each serving thread's current request."""

    def __init__(self, local: threading.local) -> None:
        super().__init__()
        self.local = local

    def append(self, request: FakeRequest) -> None:  # type: ignore[override]
        self.local.request = request
        super().append(request)


class FakeWordpress(FakePlatform):
    def __init__(self, users: dict[str, str] | None = None, categories: tuple[int, ...] = (1,),
                 tags: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.users = dict(users or {"editor": "abcd efgh ijkl mnop qrst uvwx"})
        self.categories = set(categories)
        self.tags = set(tags)
        self.can_publish = True
        self.media: dict[int, dict[str, Any]] = {}
        self.media_data: dict[int, bytes] = {}
        self.store: dict[int, dict[str, Any]] = {}  # id -> post (posts and attachments share ids)
        self._next_id = 100
        self._local = threading.local()
        self.requests = _RequestLog(self._local)
        self._fault_methods: dict[int, str] = {}
        self._routes = _Routes(self._routes, [("DELETE", re.compile(r"/wp-json/wp/v2/posts/([0-9]+)"), self.delete_post),
                                              ("GET", re.compile(r"/wp-json/wp/v2/posts/([0-9]+)"), self.get_post)])

    # ------------------------------------------------------------------ controls

    def misbehave(self, kind: str, *, path: str = "", times: int = 1, seconds: float = 0.0,
                  status: int = 503, method: str | None = None) -> None:
        with self._lock:
            super().misbehave(kind, path=path, times=times, seconds=seconds, status=status)
            if method:
                self._fault_methods[id(self._faults[-1])] = method.upper()

    def _take_fault(self, path: str):  # type: ignore[no-untyped-def]
        current = getattr(self._local, "request", None)
        method = current.method if current is not None else ""
        with self._lock:
            for fault in self._faults:
                wanted = self._fault_methods.get(id(fault))
                if path.startswith(fault.path_prefix) and wanted in (None, method):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                        self._fault_methods.pop(id(fault), None)
                    return fault
        return None

    def error_body(self, status: int) -> dict[str, Any]:
        codes = {404: ("rest_no_route", "No route was found matching the URL and request method."),
                 429: ("rest_too_many_requests", "Too many requests."),
                 500: ("internal_server_error", "There has been a critical error on this website."),
                 502: ("http_502", "Bad Gateway"), 503: ("http_503", "Service Unavailable")}
        code, message = codes.get(status, (f"http_{status}", f"HTTP {status}"))
        return {"code": code, "message": message, "data": {"status": status}}

    def posts_with_slug(self, prefix: str) -> list[dict[str, Any]]:
        return [p for p in self.store.values() if p["type"] == "post" and p["slug"].startswith(prefix)]

    def _new_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    def _auth(self, req: FakeRequest, *, required: bool, denied: tuple[int, str, str]) -> FakeResponse | str | None:
        """The user name, None (anonymous, allowed) or an error response."""
        header = req.header("Authorization")
        if not header:
            return wp_error(*denied) if required else None
        if not header.startswith("Basic "):
            return wp_error(401, "rest_not_logged_in", "You are not currently logged in.")
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return wp_error(401, "rest_not_logged_in", "You are not currently logged in.")
        if user not in self.users:
            return wp_error(401, "invalid_username", "Unknown username. Check again or try your email address.")
        if password.replace(" ", "") != self.users[user].replace(" ", ""):
            return wp_error(401, "incorrect_password", "The provided password is an invalid application password.")
        return user

    # ------------------------------------------------------------------ routes

    @route("GET", "/wp-json/wp/v2/users/me")
    def me(self, req: FakeRequest) -> FakeResponse:
        user = self._auth(req, required=True, denied=(401, "rest_not_logged_in", "You are not currently logged in."))
        if isinstance(user, FakeResponse):
            return user
        return FakeResponse(200, {"id": 1, "name": user, "slug": user})

    @route("POST", "/wp-json/wp/v2/media")
    def upload(self, req: FakeRequest) -> FakeResponse:
        user = self._auth(req, required=True, denied=(401, "rest_cannot_create",
                                                      "Sorry, you are not allowed to upload media as this user."))
        if isinstance(user, FakeResponse):
            return user
        if not req.body:
            return wp_error(400, "rest_upload_no_data", "No data supplied.")
        disposition = req.header("Content-Disposition") or ""
        match = re.search(r'filename="?([^";]+)"?', disposition)
        if not match:
            return wp_error(400, "rest_upload_no_content_disposition", "No Content-Disposition supplied.")
        mime = (req.header("Content-Type") or "").split(";")[0].strip()
        if mime not in ALLOWED_UPLOAD_TYPES:
            return wp_error(500, "rest_upload_sideload_error", "Sorry, you are not allowed to upload this file type.")
        media_id = self._new_id()
        filename = match.group(1)
        item = {"id": media_id, "type": "attachment", "slug": filename.rsplit(".", 1)[0],
                "source_url": f"{self.url}/wp-content/uploads/2026/11/{filename}", "mime_type": mime,
                "media_type": "image" if mime.startswith("image/") else "file",
                "alt_text": req.query.get("alt_text", ""), "caption": {"raw": req.query.get("caption", "")},
                "status": "inherit"}
        with self._lock:
            self.media[media_id] = item
            self.media_data[media_id] = req.body
            self.store[media_id] = item
        return FakeResponse(201, item)

    @route("POST", "/wp-json/wp/v2/posts")
    def create_post(self, req: FakeRequest) -> FakeResponse:
        user = self._auth(req, required=True, denied=(401, "rest_cannot_create",
                                                      "Sorry, you are not allowed to create posts as this user."))
        if isinstance(user, FakeResponse):
            return user
        data = req.json if isinstance(req.json, dict) else {}
        status = data.get("status", "draft")
        invalid = []
        if status not in STATUSES:
            invalid.append("status")
        if any(not isinstance(c, int) or c not in self.categories for c in data.get("categories", [])):
            invalid.append("categories")
        if any(not isinstance(t, int) or t not in self.tags for t in data.get("tags", [])):
            invalid.append("tags")
        if "date_gmt" in data:
            try:
                datetime.fromisoformat(str(data["date_gmt"]))
            except ValueError:
                invalid.append("date_gmt")
        if invalid:
            return wp_error(400, "rest_invalid_param", f"Invalid parameter(s): {', '.join(invalid)}")
        if status in ("publish", "future", "private") and not self.can_publish:
            return wp_error(403, "rest_cannot_publish", "Sorry, you are not allowed to publish posts as this user.")
        featured = data.get("featured_media", 0)
        if featured and featured not in self.media:
            return wp_error(400, "rest_invalid_featured_media", "Invalid featured media ID.")
        title, content, excerpt = (str(data.get(k, "")) for k in ("title", "content", "excerpt"))
        if not (title or content or excerpt):
            return wp_error(400, "empty_content", "Content, title, and excerpt are empty.")
        with self._lock:
            requested = str(data.get("slug") or "")
            slug = requested if status in ("draft", "pending") else self._unique_slug(requested)
            post_id = self._new_id()
            post = {"id": post_id, "type": "post", "slug": slug, "status": status,
                    "date_gmt": data.get("date_gmt"), "link": f"{self.url}/?p={post_id}",
                    "title": {"raw": title, "rendered": title}, "content": {"raw": content},
                    "excerpt": {"raw": excerpt}, "featured_media": featured or 0,
                    "categories": data.get("categories", [1]), "tags": data.get("tags", []), "author": user}
            self.store[post_id] = post
            self.record_post(requested or f"id-{post_id}")
        return FakeResponse(201, post)

    def _unique_slug(self, slug: str) -> str:
        if not slug:
            return slug
        taken = {p["slug"] for p in self.store.values() if p["type"] == "post"}
        if slug not in taken:
            return slug
        n = 2
        while f"{slug}-{n}" in taken:
            n += 1
        return f"{slug}-{n}"

    @route("GET", "/wp-json/wp/v2/posts")
    def list_posts(self, req: FakeRequest) -> FakeResponse:
        user = self._auth(req, required=False, denied=(401, "", ""))
        if isinstance(user, FakeResponse):
            return user
        wanted = req.query.get("status", "publish")
        statuses = set(STATUSES) if wanted == "any" else set(wanted.split(","))
        if user is None and statuses != {"publish"}:
            return wp_error(400, "rest_invalid_param", "Invalid parameter(s): status")
        slugs = set(filter(None, req.query.get("slug", "").split(",")))
        search = req.query.get("search", "")
        found = [p for p in self.store.values() if p["type"] == "post" and p["status"] in statuses
                 and (not slugs or p["slug"] in slugs) and (not search or search in p["title"]["raw"])]
        per_page = int(req.query.get("per_page", "10"))
        return FakeResponse(200, sorted(found, key=lambda p: -p["id"])[:per_page])

    def get_post(self, req: FakeRequest) -> FakeResponse:
        post = self.store.get(int(req.path.rsplit("/", 1)[1]))
        if post is None or post["type"] != "post":
            return wp_error(404, "rest_post_invalid_id", "Invalid post ID.")
        return FakeResponse(200, post)

    def delete_post(self, req: FakeRequest) -> FakeResponse:
        user = self._auth(req, required=True, denied=(401, "rest_cannot_delete",
                                                      "Sorry, you are not allowed to delete this post."))
        if isinstance(user, FakeResponse):
            return user
        post_id = int(req.path.rsplit("/", 1)[1])
        with self._lock:
            post = self.store.get(post_id)
            if post is None or post["type"] != "post":
                return wp_error(404, "rest_post_invalid_id", "Invalid post ID.")
            if req.query.get("force") == "true":
                del self.store[post_id]
                return FakeResponse(200, {"deleted": True, "previous": post})
            if post["status"] == "trash":
                return wp_error(410, "rest_already_trashed", "The post has already been deleted.")
            post["status"] = "trash"
            post["slug"] += "__trashed"
        return FakeResponse(200, post)
