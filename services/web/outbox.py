"""人工发布 (the outbox page): packages waiting for a person to post them by hand.

For accounts in outbox mode and channels without a publishing API (视频号). Each waiting
delivery shows what the package holds — the texts to paste, the files in order, the channel's
checklist — with the zip to download and a form to record the post's URL, which marks the
delivery published (services/outbox.record_posted, audited). Editors, ops and admins act.
Routes are thin, as in app.py and calendar.py: parse, call one service function, map errors.
`outbox_router(render, flash)` builds the router around app.py's renderer and flash helper.
"""
# No `from __future__ import annotations`: FastAPI resolves the routes' Annotated aliases,
# which are local to outbox_router, at run time.
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from services import outbox
from services.config import get_settings
from services.errors import FanoutError, NotFound
from services.models import Delivery, User, utcnow
from services.users import require_role

TEXT_PREVIEW_CHARS = 2000  # longer texts are in the zip; the page shows their start


def waited_zh(since: datetime | None, now: datetime) -> str:
    """已等待 3 小时 / 2 天 (how long a package has been waiting)."""
    if since is None:
        return ""
    if since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return f"已等待 {minutes} 分钟"
    if minutes < 48 * 60:
        return f"已等待 {minutes // 60} 小时"
    return f"已等待 {minutes // (24 * 60)} 天"


def outbox_router(render: Callable[..., HTMLResponse], flash: Callable[[Request, str], None]) -> APIRouter:
    """The outbox routes, rendering and flashing through app.py's helpers."""
    from services.web import app as web

    PageUser = Annotated[User, Depends(web.page_user)]
    Db = Annotated[Session, Depends(web.db_session, scope="function")]
    FormText = Annotated[str, Form()]
    router = APIRouter()

    def package_view(delivery: Delivery, now: datetime) -> dict[str, Any]:
        settings = get_settings()
        try:
            manifest = outbox.manifest(settings, delivery.id)
        except NotFound:
            manifest = None
        texts = []
        if manifest:
            root = outbox.package_dir(settings, delivery.id)
            for name in manifest["texts"]:
                path = root / name
                text = path.read_text(encoding="utf-8") if path.is_file() else ""
                texts.append({"name": name, "text": text[:TEXT_PREVIEW_CHARS],
                              "cut": len(text) > TEXT_PREVIEW_CHARS, "chars": len(text)})
        return {"delivery": delivery, "manifest": manifest, "texts": texts,
                "channel_zh": web.CHANNEL_ZH.get(delivery.account.channel, delivery.account.channel),
                "waited": waited_zh(delivery.updated_at, now)}

    def page(request: Request, session: Session, user: User, status_code: int = 200,
             error: str | None = None, error_id: int | None = None, url: str = "") -> HTMLResponse:
        now = utcnow()
        items = [package_view(d, now) for d in outbox.waiting(session)]
        return render(request, "outbox.html", status_code=status_code, user=user, items=items, error=error,
                      error_id=error_id, url=url,
                      can_act=any(user.has_role(r) for r in ("editor", "ops", "admin")))

    @router.get("/outbox", response_class=HTMLResponse, include_in_schema=False)
    def outbox_page(request: Request, user: PageUser, session: Db) -> HTMLResponse:
        return page(request, session, user)

    @router.get("/outbox/{delivery_id}.zip", include_in_schema=False)
    def outbox_zip(delivery_id: int, user: PageUser) -> Response:
        require_role(user, "editor", "ops", "admin")
        data = outbox.zip_bytes(get_settings(), delivery_id)
        return Response(data, media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="fanout-{delivery_id}.zip"'})

    @router.post("/outbox/{delivery_id}/posted", include_in_schema=False)
    def outbox_posted(request: Request, delivery_id: int, user: PageUser, session: Db, url: FormText = "",
                      csrf: FormText = "") -> Any:
        web.check_csrf(request, csrf)
        try:
            outbox.record_posted(session, delivery_id, url, user)
        except FanoutError as exc:
            session.rollback()
            return page(request, session, user, exc.http_status, exc.message_zh, delivery_id, url)
        flash(request, f"已登记发布任务 #{delivery_id} 的发布链接")
        return RedirectResponse("/outbox", status_code=303)

    return router
