"""The web app: editor UI (Jinja2, Simplified Chinese), JSON API under /api, the built site.

Routes are thin: parse the request, call one service function, map typed errors (HTTP status
from `FanoutError.http_status`; the Chinese message in the UI, the English one in the API).
Sessions are signed cookies; every form carries a CSRF token bound to the session. The API
accepts the same session or HTTP Basic credentials. `/site/` serves FANOUT_HOME/site.
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
import swagger_ui_bundle
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from starlette.middleware.sessions import SessionMiddleware

from services import dispatch
from services.accounts import list_accounts, public_view
from services.config import get_settings
from services.db import session_scope
from services.errors import AuthenticationFailed, FanoutError, PermissionDenied
from services.models import Delivery, User
from services.secrets import session_secret
from services.storage import open_storage
from services.stories import MediaInput, StoryInput, create_story, get_story, list_stories
from services.users import authenticate, get_user, require_role

HERE = Path(__file__).resolve().parent
UPLOAD_MAX_BYTES = 512 * 1024 * 1024

STATE_ZH = {
    "planned": "已计划", "rendering": "渲染中", "ready": "待发布", "publishing": "发布中", "published": "已发布",
    "retry_wait": "等待重试", "failed": "失败", "unknown": "结果待核实", "retracted": "已撤回", "held": "已暂停",
}
CHANNEL_ZH = {
    "website": "网站", "rss": "RSS", "weibo": "微博", "douyin": "抖音", "wechat_mp": "公众号",
    "wechat_channels": "视频号", "wordpress": "WordPress", "webhook": "Webhook",
}
STATUS_ZH = {"draft": "草稿", "published": "已发布", "retracted": "已撤回"}


# --------------------------------------------------------------------------- dependencies


def db_session() -> Iterator[Session]:
    """One unit of work per request (services.db.session_scope)."""
    with session_scope() as session:
        yield session


def optional_user(request: Request, session: Session = Depends(db_session)) -> User | None:
    user_id = request.session.get("user_id")
    if not user_id:
        return None
    try:
        return get_user(session, int(user_id))
    except FanoutError:
        request.session.clear()
        return None


class LoginRequired(Exception):
    pass


def page_user(user: User | None = Depends(optional_user)) -> User:
    if user is None:
        raise LoginRequired()
    return user


_basic = HTTPBasic(auto_error=False)


def api_user(request: Request, credentials: HTTPBasicCredentials | None = Depends(_basic),
             session: Session = Depends(db_session)) -> User:
    if credentials is not None:
        try:
            return authenticate(session, credentials.username, credentials.password)
        except AuthenticationFailed:
            session.commit()  # keep the failed-login audit event
            raise HTTPException(401, "wrong username or password", headers={"WWW-Authenticate": "Basic"})
    user = optional_user(request, session)
    if user is None:
        raise HTTPException(401, "login required", headers={"WWW-Authenticate": "Basic"})
    return user


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(24)
    return token


def check_csrf(request: Request, token: str) -> None:
    if not token or not secrets.compare_digest(token, request.session.get("csrf", "")):
        raise PermissionDenied("CSRF token missing or invalid", "表单已过期，请刷新页面后重试")


def _queue():  # noqa: ANN202
    import worker

    return worker.task_queue()


# --------------------------------------------------------------------------- view helpers


def channel_states(deliveries: list[Delivery]) -> list[dict[str, Any]]:
    """The newest delivery per account, for the per-channel badges."""
    latest: dict[int, Delivery] = {}
    for d in sorted(deliveries, key=lambda d: d.id):
        latest[d.account_id] = d
    return [{"channel": d.account.channel, "channel_zh": CHANNEL_ZH.get(d.account.channel, d.account.channel),
             "account": d.account.name, "state": d.state, "state_zh": STATE_ZH.get(d.state, d.state),
             "url": d.remote_url, "error": d.last_error} for d in latest.values()]


class PublicSiteFiles(StaticFiles):
    """The built site, minus the channels' own records (`_data/`) and dotfiles (the lock)."""

    def get_path(self, scope) -> str:  # noqa: ANN001 - ASGI scope
        path = super().get_path(scope)
        parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
        if any(p.startswith(("_", ".")) for p in parts):
            raise HTTPException(404)
        return path


class StoryCreate(BaseModel):
    title: str = Field(description="标题")
    body_markdown: str = ""
    summary: str = ""
    theme: str = ""
    unit: str = ""
    label: str = ""
    tags: list[str] = []


# --------------------------------------------------------------------------- app


def create_app() -> FastAPI:
    settings = get_settings()
    settings.ensure_dirs()
    app = FastAPI(title="Fanout", version="0.1.0", docs_url=None, redoc_url=None,
                  description="县融媒体中心多渠道分发：一次撰稿，三审三校，多渠道发布。")
    app.mount("/static/swagger", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Fanout API",
                                   swagger_js_url="/static/swagger/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger/swagger-ui.css",
                                   swagger_favicon_url="/static/swagger/favicon-32x32.png")

    app.add_middleware(SessionMiddleware, secret_key=session_secret(settings), session_cookie="fanout_session",
                       same_site="lax", https_only=settings.public_url.startswith("https://"), max_age=12 * 3600)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(STATE_ZH=STATE_ZH, CHANNEL_ZH=CHANNEL_ZH, STATUS_ZH=STATUS_ZH)
    zone = ZoneInfo(settings.timezone)
    templates.env.filters["local"] = lambda dt: dt.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if dt else "—"
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.mount("/site", PublicSiteFiles(directory=str(settings.site_dir), html=True, check_dir=False), name="site")

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("user", None)
        context["csrf"] = csrf_token(request)
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, _exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(FanoutError)
    async def _service_error(request: Request, exc: FanoutError) -> Any:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.message, "detail_zh": exc.message_zh}, status_code=exc.http_status)
        return render(request, "error.html", status_code=exc.http_status, message=exc.message_zh)

    # ----------------------------------------------------------------- health

    @app.get("/healthz", tags=["ops"])
    def healthz(session: Session = Depends(db_session)) -> dict[str, Any]:
        session.execute(text("SELECT 1"))
        return {"status": "ok", "database": session.get_bind().dialect.name,
                "broker": "redis" if settings.broker_url else "filesystem"}

    # ----------------------------------------------------------------- login

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str = "/") -> HTMLResponse:
        return render(request, "login.html", next=next if next.startswith("/") else "/")

    @app.post("/login", include_in_schema=False)
    def login(request: Request, username: str = Form(""), password: str = Form(""), next: str = Form("/"),
              csrf: str = Form(""), session: Session = Depends(db_session)) -> Any:
        check_csrf(request, csrf)
        try:
            user = authenticate(session, username.strip(), password)
        except AuthenticationFailed as exc:
            session.commit()
            return render(request, "login.html", status_code=401, error=exc.message_zh, next=next,
                          username=username)
        request.session.clear()
        request.session["user_id"] = user.id
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        return RedirectResponse(target, status_code=303)

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, csrf: str = Form("")) -> RedirectResponse:
        check_csrf(request, csrf)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # ----------------------------------------------------------------- editor pages

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def story_list(request: Request, user: User = Depends(page_user),
                   session: Session = Depends(db_session)) -> HTMLResponse:
        stories = list_stories(session, limit=200)
        ids = [s.id for s in stories]
        deliveries = list(session.scalars(select(Delivery).where(Delivery.story_id.in_(ids)))) if ids else []
        by_story: dict[int, list[Delivery]] = {}
        for d in deliveries:
            by_story.setdefault(d.story_id, []).append(d)
        rows = [{"story": s, "version": s.current, "channels": channel_states(by_story.get(s.id, []))}
                for s in stories]
        return render(request, "stories.html", user=user, rows=rows, accounts=list_accounts(session))

    @app.get("/stories/new", response_class=HTMLResponse, include_in_schema=False)
    def new_story_page(request: Request, user: User = Depends(page_user)) -> HTMLResponse:
        return render(request, "story_new.html", user=user, form={})

    @app.post("/stories/new", include_in_schema=False)
    def new_story(request: Request, title: str = Form(""), summary: str = Form(""), body: str = Form(""),
                  theme: str = Form(""), unit: str = Form(""), label: str = Form(""), alt: str = Form(""),
                  csrf: str = Form(""), cover: UploadFile | None = File(None),
                  video: UploadFile | None = File(None), user: User = Depends(page_user),
                  session: Session = Depends(db_session)) -> Any:
        check_csrf(request, csrf)
        require_role(user, "editor")
        form = {"title": title, "summary": summary, "body": body, "theme": theme, "unit": unit, "label": label,
                "alt": alt}
        with tempfile.TemporaryDirectory(dir=settings.cache_dir) as tmp:
            try:
                media = []
                for role, upload in (("cover", cover), ("video", video)):
                    if upload is not None and upload.filename:
                        media.append(_save_upload(upload, Path(tmp), role, alt if role == "cover" else ""))
                created = create_story(session, open_storage(settings), StoryInput(
                    title=title, body_markdown=body, summary=summary, theme=theme, unit=unit, label=label,
                    media=media), actor=user)
            except FanoutError as exc:
                session.rollback()
                return render(request, "story_new.html", status_code=exc.http_status, user=user, form=form,
                              error=exc.message_zh)
        return RedirectResponse(f"/stories/{created.id}", status_code=303)

    @app.get("/stories/{story_id}", response_class=HTMLResponse, include_in_schema=False)
    def story_page(request: Request, story_id: int, user: User = Depends(page_user),
                   session: Session = Depends(db_session)) -> HTMLResponse:
        story = get_story(session, story_id)
        deliveries = dispatch.deliveries_for(session, story_id=story_id)
        return render(request, "story.html", user=user, story=story, version=story.current,
                      deliveries=deliveries, channels=channel_states(deliveries))

    @app.post("/stories/{story_id}/publish", include_in_schema=False)
    def publish_page(request: Request, story_id: int, csrf: str = Form(""), user: User = Depends(page_user),
                     session: Session = Depends(db_session)) -> RedirectResponse:
        check_csrf(request, csrf)
        require_role(user, "editor", "ops")
        dispatch.plan_publication(session, _queue(), story_id, actor=user)
        return RedirectResponse(f"/stories/{story_id}", status_code=303)

    # ----------------------------------------------------------------- JSON API

    @app.get("/api/stories", tags=["stories"])
    def api_stories(limit: int = 100, offset: int = 0, user: User = Depends(api_user),
                    session: Session = Depends(db_session)) -> list[dict[str, Any]]:
        return [_story_json(s) for s in list_stories(session, limit=min(limit, 500), offset=offset)]

    @app.post("/api/stories", tags=["stories"], status_code=201)
    def api_create_story(body: StoryCreate, user: User = Depends(api_user),
                         session: Session = Depends(db_session)) -> dict[str, Any]:
        require_role(user, "editor")
        story = create_story(session, open_storage(settings), StoryInput(**body.model_dump()), actor=user)
        return _story_json(story)

    @app.get("/api/stories/{story_id}", tags=["stories"])
    def api_story(story_id: int, user: User = Depends(api_user),
                  session: Session = Depends(db_session)) -> dict[str, Any]:
        story = get_story(session, story_id)
        data = _story_json(story)
        data["deliveries"] = [dispatch.delivery_view(d) for d in dispatch.deliveries_for(session, story_id=story_id)]
        return data

    @app.post("/api/stories/{story_id}/publish", tags=["deliveries"])
    def api_publish(story_id: int, user: User = Depends(api_user),
                    session: Session = Depends(db_session)) -> dict[str, Any]:
        require_role(user, "editor", "ops")
        result = dispatch.plan_publication(session, _queue(), story_id, actor=user)
        return {"story_id": result.story_id, "version": result.version, "created": result.created,
                "existing": result.existing}

    @app.get("/api/deliveries", tags=["deliveries"])
    def api_deliveries(story_id: int | None = None, user: User = Depends(api_user),
                       session: Session = Depends(db_session)) -> list[dict[str, Any]]:
        return [dispatch.delivery_view(d) for d in dispatch.deliveries_for(session, story_id=story_id)]

    @app.get("/api/accounts", tags=["accounts"])
    def api_accounts(user: User = Depends(api_user), session: Session = Depends(db_session)) -> list[dict[str, Any]]:
        return [public_view(a) for a in list_accounts(session)]

    @app.get("/api/me", tags=["users"])
    def api_me(user: User = Depends(api_user)) -> dict[str, Any]:
        return {"id": user.id, "username": user.username, "roles": user.role_names, "unit": user.unit}

    return app


def _story_json(story) -> dict[str, Any]:  # noqa: ANN001
    version = story.current
    return {
        "id": story.id, "status": story.status, "version": version.number, "title": version.title,
        "summary": version.summary, "theme": version.theme, "unit": version.unit, "label": version.label,
        "tags": list(version.tags or []), "created_at": story.created_at.isoformat(),
        "media": [{"role": m.role, "sha256": m.asset_sha256, "mime": m.asset.mime, "alt": m.alt}
                  for m in version.media],
    }


def _save_upload(upload: UploadFile, folder: Path, role: str, alt: str) -> MediaInput:
    """Spool an upload to disk (bounded size) keeping the editor's file name for messages."""
    from services.errors import ValidationError
    from services.stories import safe_original_name

    name = safe_original_name(upload.filename or "")
    dest = folder / f"{role}-{secrets.token_hex(4)}"
    written = 0
    with open(dest, "wb") as out:
        while chunk := upload.file.read(1 << 20):
            written += len(chunk)
            if written > UPLOAD_MAX_BYTES:
                raise ValidationError(f"{name}: upload larger than {UPLOAD_MAX_BYTES >> 20} MB",
                                      f"{name}：文件超过 {UPLOAD_MAX_BYTES >> 20} MB 上限")
            out.write(chunk)
    return MediaInput(path=dest, role=role, alt=alt, original_name=name)


