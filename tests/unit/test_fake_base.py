"""tests/fakes/base.py itself: parsing, counting and each fault, so the channel tests built on it
can trust what a fake says happened."""

from __future__ import annotations

import pytest
import requests

from tests.fakes.base import FakePlatform, FakeRequest, FakeResponse, route


class Echo(FakePlatform):
    @route("POST", "/post")
    def post(self, req: FakeRequest) -> FakeResponse:
        count = self.record_post(req.param("text") or "")
        files = {name: [f.filename, f.content_type, len(f.data)] for name, f in req.files.items()}
        return FakeResponse(200, {"count": count, "form": req.form, "json": req.json, "files": files,
                                  "query": req.query})

    def error_body(self, status: int) -> dict:
        return {"error_code": status}


@pytest.fixture()
def fake():
    with Echo() as server:
        yield server


def test_parses_form_json_multipart_and_query(fake: Echo) -> None:
    r = requests.post(f"{fake.url}/post?open_id=x", data={"text": "你好"}, timeout=5).json()
    assert r["form"] == {"text": "你好"} and r["query"] == {"open_id": "x"}
    r = requests.post(f"{fake.url}/post", json={"text": "j"}, timeout=5).json()
    assert r["json"] == {"text": "j"} and r["count"] == 1
    r = requests.post(f"{fake.url}/post", data={"text": "m"}, files={"pic": ("a.jpg", b"\xff\xd8xx", "image/jpeg")},
                      timeout=5).json()
    assert r["form"] == {"text": "m"} and r["files"] == {"pic": ["a.jpg", "image/jpeg", 4]}
    assert requests.post(f"{fake.url}/nope", timeout=5).status_code == 404


def test_faults(fake: Echo) -> None:
    fake.misbehave("status", path="/post", status=502)
    r = requests.post(f"{fake.url}/post", data={"text": "a"}, timeout=5)
    assert r.status_code == 502 and r.json() == {"error_code": 502}
    fake.misbehave("retry_after", seconds=7)
    r = requests.post(f"{fake.url}/post", data={"text": "a"}, timeout=5)
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    fake.misbehave("reset")
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{fake.url}/post", data={"text": "a"}, timeout=5)
    assert fake.posts["a"] == 0  # nothing reached the handler yet
    fake.misbehave("hang_after", seconds=1.0)
    with pytest.raises((requests.ReadTimeout, requests.ConnectionError)):
        requests.post(f"{fake.url}/post", data={"text": "a"}, timeout=(2, 0.3))
    assert fake.posts["a"] == 1  # recorded, though the client never heard back
    r = requests.post(f"{fake.url}/post", data={"text": "a"}, timeout=5)
    assert r.json()["count"] == 2
    assert fake.paths().count("/post") == 5
