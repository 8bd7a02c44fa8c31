"""The web app: editor UI (Jinja2, Simplified Chinese), JSON API under /api, the built site.

Routes are thin: parse the request, call one service function, map typed errors (HTTP status
from `FanoutError.http_status`; the Chinese message in the UI, the English one in the API).
Sessions are signed cookies; every form carries a CSRF token bound to the session. The API
accepts the same session or HTTP Basic credentials. `/site/` serves FANOUT_HOME/site.

Review (三审三校, services/review.py): `/review` is the inbox per level, `/review/{id}` shows a
version's proof findings, each account's rendered post side by side (sandboxed iframes: no
scripts), the diff against the last approved version and the sign/escalate/answer forms.
The preview iframes are `srcdoc` documents with opaque origins, so they load their media
and stylesheet without cookies from `/preview/{version_id}/{token}/…`, where the token is an
HMAC of the version id: only a page that was allowed to show the preview knows it, and it
only serves that version's renditions. `/audit` lists the audit trail (admin, ops);
`/admin/proofing` edits the proof word lists (admin).
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import logging
import re
import secrets
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Literal
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
import swagger_ui_bundle
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import BaseModel, Field
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, object_session
from starlette.middleware.sessions import SessionMiddleware

from channels import short_names
from services import audit, dispatch, proofing, retraction, review, schedule
from services.accounts import list_accounts, public_view
from services.config import get_settings
from services.db import session_scope
from services.errors import AuthenticationFailed, FanoutError, NotFound, PermissionDenied, ValidationError
from services.models import Delivery, RenditionRecord, ReviewQuestion, Slot, Story, StoryVersion, User, utcnow
from services.secrets import session_secret
from services.storage import open_storage
from services.stories import MediaInput, StoryInput, create_story, get_story, list_stories
from services.users import authenticate, get_user, require_role
from services.web.bulk import bulk_router
from services.web.calendar import calendar_router, calendar_url
from services.web.ops import ops_router
from services.web.outbox import outbox_router

HERE = Path(__file__).resolve().parent
log = logging.getLogger("fanout.web")
UPLOAD_MAX_BYTES = 512 * 1024 * 1024

STATE_ZH = {
    "planned": "已计划", "rendering": "渲染中", "ready": "待发布", "publishing": "发布中", "published": "已发布",
    "retry_wait": "等待重试", "failed": "失败", "unknown": "结果待核实", "retracted": "已撤回", "held": "已暂停",
    "outbox": "待人工发布", "retracting": "撤回中",
}
CHANNEL_ZH = short_names()  # the channels' own short_zh (channels/__init__.py)
STATUS_ZH = {"draft": "未发布", "published": "已发布", "retracted": "已撤回"}  # Story.status; review has its own
ROLE_ZH = {"editor": "编辑", "reviewer": "审核", "ops": "运维", "admin": "管理员"}
ACTION_ZH = {
    "create": "创建", "edit": "修改", "submit": "提交审核", "withdraw": "撤回送审", "approve": "审核通过",
    "reject": "审核退回", "escalate": "请示", "answer": "答复请示", "reapprove": "渠道重新审核",
    "publish": "发布", "retract": "撤稿", "login": "登录", "login_failed": "登录失败", "password": "修改密码",
    "proofing": "修改校对词库", "outbox.posted": "登记人工发布", "delivery.retry": "重试发布",
    "delivery.reconcile": "重新核实", "delivery.give_up": "放弃发布", "account.login": "登记视频号登录",
    "import": "批量导入",
}
OBJECT_ZH = {"story": "稿件", "user": "用户", "wordlist": "词表", "delivery": "发布任务", "account": "渠道账号",
             "manifest": "导入清单"}
FINDING_ZH = {"limit": "渠道限制", "sensitive": "敏感词", "typo": "错别字", "cover": "封面", "alt": "替代文字",
              "label": "栏目标识", "render": "无法生成"}
PREVIEW_ORDER = {"website": 0, "rss": 1}  # then the other channels by name
DIFF_FIELDS = (("title", "标题"), ("label", "栏目标识"), ("summary", "摘要"), ("body_markdown", "正文"))
DIFF_CONTEXT = 2  # unchanged lines kept around each change
INLINE_DIFF_MAX = 4_000_000  # len(a) * len(b) above which a changed line is shown whole
MEDIA_PATH = re.compile(r"media/[0-9a-f]{2}/([0-9a-f]{64})\.[a-z0-9]{1,5}")
HEAD_TAG = re.compile(r"<head(?:\s[^>]*)?>", re.IGNORECASE)
FRAME_CSP = "script-src 'none'; object-src 'none'; form-action 'none'"


# --------------------------------------------------------------------------- dependencies


def db_session() -> Iterator[Session]:
    """One unit of work per request (services.db.session_scope). Routes take it with
    scope="function", so it commits before the response is sent: a browser following a
    redirect then reads what the POST wrote."""
    with session_scope() as session:
        yield session


def optional_user(request: Request, session: Session = Depends(db_session, scope="function")) -> User | None:
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
             session: Session = Depends(db_session, scope="function")) -> User:
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


def _inline_diff(old: str, new: str) -> tuple[Markup, Markup]:
    """One changed line, character by character: deletions in <del>, additions in <ins>."""
    if len(old) * len(new) > INLINE_DIFF_MAX:
        return Markup("<del>%s</del>") % old, Markup("<ins>%s</ins>") % new
    left: list[Markup] = []
    right: list[Markup] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            left.append(escape(old[i1:i2]))
            right.append(escape(new[j1:j2]))
            continue
        if i2 > i1:
            left.append(Markup("<del>%s</del>") % old[i1:i2])
        if j2 > j1:
            right.append(Markup("<ins>%s</ins>") % new[j1:j2])
    return Markup("").join(left), Markup("").join(right)


def field_diff(old: str, new: str, context: int = DIFF_CONTEXT) -> list[dict[str, Any]] | None:
    """Side-by-side rows of a line diff (None when nothing changed). Each row: kind (same,
    change, delete, insert, skip), old_no/new_no (1-based line numbers) and old/new as safe
    HTML. Runs of unchanged lines longer than 2 × context collapse into one "skip" row."""
    a, b = (old or "").splitlines(), (new or "").splitlines()
    if a == b:
        return None
    rows: list[dict[str, Any]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            rows += [{"kind": "same", "old_no": i1 + k + 1, "new_no": j1 + k + 1, "old": escape(a[i1 + k]),
                      "new": escape(b[j1 + k])} for k in range(i2 - i1)]
            continue
        for k in range(max(i2 - i1, j2 - j1)):
            line_a = a[i1 + k] if i1 + k < i2 else None
            line_b = b[j1 + k] if j1 + k < j2 else None
            row: dict[str, Any] = {"old_no": i1 + k + 1 if line_a is not None else None,
                                   "new_no": j1 + k + 1 if line_b is not None else None}
            if line_a is not None and line_b is not None:
                row["kind"] = "change"
                row["old"], row["new"] = _inline_diff(line_a, line_b)
            elif line_a is not None:
                row.update(kind="delete", old=Markup("<del>%s</del>") % line_a, new=None)
            else:
                row.update(kind="insert", old=None, new=Markup("<ins>%s</ins>") % line_b)
            rows.append(row)
    changed = [i for i, r in enumerate(rows) if r["kind"] != "same"]
    keep = {i for c in changed for i in range(c - context, c + context + 1)}
    out: list[dict[str, Any]] = []
    for i, r in enumerate(rows):
        if i in keep or r["kind"] != "same":
            out.append(r)
        elif not out or out[-1]["kind"] != "skip":
            out.append({"kind": "skip", "count": 1})
        else:
            out[-1]["count"] += 1
    return out


def version_diff(old: StoryVersion | None, new: StoryVersion) -> list[dict[str, Any]] | None:
    """The diff of the reviewed fields between two versions, field by field (None: no old one)."""
    if old is None:
        return None
    return [{"name": name, "name_zh": name_zh,
             "rows": field_diff(getattr(old, name) or "", getattr(new, name) or "")}
            for name, name_zh in DIFF_FIELDS]


def preview_token(secret: str, version_id: int) -> str:
    return hmac.new(secret.encode(), f"preview:{version_id}".encode(), hashlib.sha256).hexdigest()[:32]


def frame_document(page_html: str, base_href: str) -> str:
    """A rendered page for a sandboxed iframe: a CSP that refuses scripts, and a <base> so its
    relative media and stylesheet URLs load from the preview route."""
    inject = (f'<meta http-equiv="Content-Security-Policy" content="{FRAME_CSP}">'
              f'<base href="{escape(base_href)}">')
    match = HEAD_TAG.search(page_html)
    if match is None:
        return f"<!doctype html><html><head>{inject}</head><body>{page_html}</body></html>"
    return page_html[:match.end()] + inject + page_html[match.end():]


def can_withdraw(session: Session, story: Story, version: StoryVersion, user: User) -> bool:
    """Mirror of review.withdraw's rule, to show the button only when it would work."""
    if version.review_state != "submitted" or user.id not in review.authors_of(session, story):
        return False
    return not any(s["round"] == version.review_round for s in review.status(session, story.id)["signatures"])


def sign_refusal(session: Session, story: Story, version: StoryVersion, user: User) -> str | None:
    """Why the user cannot sign the pending level (the service's rules, for the UI); None if they can."""
    level = review.pending_level(version)
    if level is None:
        return f"稿件当前状态为“{review.STATE_ZH.get(version.review_state, version.review_state)}”，无需审核"
    if level not in review.reviewer_levels(user):
        return f"稿件正在等待{review.LEVEL_ZH[level]}，您不是{review.LEVEL_ZH[level]}审核人"
    if user.id in review.authors_of(session, story):
        return "作者不能审核自己的稿件"
    signed = sorted({s["level"] for s in review.status(session, story.id)["signatures"]
                     if s["reviewer"] == user.username and s["decision"] == "approve" and s["level"] != level})
    if signed:
        return f"您已签署本版本的{'、'.join(review.LEVEL_ZH[x] for x in signed)}，三审须由三位不同的审核人完成"
    return None


def local_moment(text: str) -> datetime:
    """A `datetime-local` form value (YYYY-MM-DDTHH:MM, Beijing time) as an aware datetime."""
    text = text.strip()
    if not text:
        raise ValidationError("choose the release time", "请选择定时发布时间")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"the time must be YYYY-MM-DDTHH:MM, got {text!r}",
                              "发布时间格式应为 YYYY-MM-DD HH:MM") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=schedule.ZONE)


def account_label(account: Any) -> str:  # a ChannelAccount
    return f"{CHANNEL_ZH.get(account.channel, account.channel)} · {account.name}"


def story_slots(session: Session, story_id: int, user: User, now: datetime) -> list[dict[str, Any]]:
    """The story's series slots and explicit schedules that are pending, released or missed
    (the 排期 section of the story page), in release order; a pending explicit one can be
    cancelled by an editor/ops/admin while it is not yet due."""
    can_act = any(user.has_role(role) for role in ("editor", "ops", "admin"))
    labels = {a.id: account_label(a) for a in list_accounts(session)}
    rows = []
    for slot in session.scalars(select(Slot).where(Slot.story_id == story_id,
                                                   Slot.state.in_(["filled", "released", "missed"]))
                                .order_by(Slot.release_at, Slot.id)):
        explicit = slot.series_id is None
        account_ids = list(slot.account_ids or []) if explicit else list(slot.series.account_ids or [])
        rows.append({
            "slot": slot, "title": slot.title_zh, "explicit": explicit,
            "when": f"{slot.release_at.astimezone(schedule.ZONE):%Y-%m-%d %H:%M}",
            "state_zh": schedule.SLOT_STATES_ZH.get(slot.state, slot.state),
            "accounts": [labels.get(i, f"账号 {i}") for i in account_ids],  # empty: every enabled account
            "calendar": calendar_url("week", slot.day, slot_id=slot.id),
            "can_cancel": can_act and explicit and slot.state == "filled" and slot.release_at > now,
        })
    return rows


def questions_for(session: Session, user: User) -> list[dict[str, Any]]:
    """Unanswered questions addressed to one of the user's levels, on versions still under review."""
    levels = review.reviewer_levels(user)
    asked_from = [level - 1 for level in levels if level > 1]
    if not asked_from:
        return []
    rows = []
    for question in session.scalars(select(ReviewQuestion).where(
            ReviewQuestion.answer.is_(None), ReviewQuestion.from_level.in_(asked_from))
            .order_by(ReviewQuestion.asked_at)):
        version = session.get(StoryVersion, question.version_id)
        story = session.get(Story, version.story_id)
        if story.current.id != version.id or review.pending_level(version) is None:
            continue
        if user.id in review.authors_of(session, story):
            continue
        rows.append({"question": question, "story": story, "version": version,
                     "to_level": question.from_level + 1})
    return rows


def waiting_count(user: User | None) -> int:
    """Stories waiting at the user's review levels (the nav badge)."""
    if user is None or not review.reviewer_levels(user):
        return 0
    session = object_session(user)
    if session is None:
        return 0
    return sum(len(stories) for stories in review.inbox(session, user).values())


def outbox_count(user: User | None) -> int:
    """Deliveries waiting for a person to post them (the nav badge of 人工发布)."""
    session = object_session(user) if user is not None else None
    if session is None:
        return 0
    return session.scalar(select(func.count()).select_from(Delivery).where(Delivery.state == "outbox")) or 0


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


class PublicSiteFiles(StaticFiles):
    """The built site, minus the channels' own records (`_data/`) and dotfiles (the lock)."""

    def get_path(self, scope) -> str:  # noqa: ANN001 - ASGI scope
        path = super().get_path(scope)
        parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
        if any(p.startswith(("_", ".")) for p in parts):
            raise HTTPException(404)
        return path


class ReviewDecision(BaseModel):
    decision: Literal["approve", "reject"] = Field(description="approve 通过 | reject 退回")
    opinion: str = Field("", description="审核意见（退回时必填）")
    acknowledge: list[str] | Literal["all"] = Field(
        default_factory=list, description="确认的提示（finding key 列表，或 \"all\"）")
    level: int | None = Field(None, description="签署的审核级别（1 初审、2 复审、3 终审）；不符则拒绝")


class StoryCreate(BaseModel):
    title: str = Field(description="标题")
    body_markdown: str = ""
    summary: str = ""
    theme: str = ""
    unit: str = ""
    label: str = ""
    project: str = Field("", description="民生实事项目（活动标签变量 {project}）")
    campaign: str | int | None = Field(None, description="活动名称或编号；有标签模板时由模板生成标签")
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
    templates.env.globals.update(STATE_ZH=STATE_ZH, CHANNEL_ZH=CHANNEL_ZH, STATUS_ZH=STATUS_ZH,
                                 REVIEW_ZH=review.STATE_ZH, LEVEL_ZH=review.LEVEL_ZH, ROLE_ZH=ROLE_ZH,
                                 ACTION_ZH=ACTION_ZH, OBJECT_ZH=OBJECT_ZH, FINDING_ZH=FINDING_ZH)
    zone = ZoneInfo(settings.timezone)
    templates.env.filters["local"] = (
        lambda dt: _as_datetime(dt).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if dt else "—")
    preview_secret = session_secret(settings)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.mount("/site", PublicSiteFiles(directory=str(settings.site_dir), html=True, check_dir=False), name="site")

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("user", None)
        context["csrf"] = csrf_token(request)
        user = context["user"]
        context["nav_levels"] = sorted(review.reviewer_levels(user)) if user else []
        context["nav_waiting"] = waiting_count(user)
        context["nav_outbox"] = outbox_count(user)
        context.setdefault("flash", request.session.pop("flash", None))
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def flash(request: Request, message: str) -> None:
        request.session["flash"] = message

    def stories_page(request: Request, session: Session, user: User, status_code: int = 200,
                     **extra: Any) -> HTMLResponse:
        """The story list (`/`), with the 批量导入 form's outcome when `extra` carries one."""
        stories = list_stories(session, limit=200)
        ids = [s.id for s in stories]
        deliveries = list(session.scalars(select(Delivery).where(Delivery.story_id.in_(ids)))) if ids else []
        by_story: dict[int, list[Delivery]] = {}
        for d in deliveries:
            by_story.setdefault(d.story_id, []).append(d)
        rows = [{"story": s, "version": s.current, "channels": channel_states(by_story.get(s.id, []))}
                for s in stories]
        return render(request, "stories.html", status_code=status_code, user=user, rows=rows,
                      accounts=list_accounts(session), **extra)

    # Before /stories/{story_id}: /stories/export and /stories/import/… are not story ids.
    app.include_router(bulk_router(render, flash, stories_page))
    app.include_router(calendar_router(render, flash))
    app.include_router(outbox_router(render, flash))
    app.include_router(ops_router(render, flash))

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
    def healthz(session: Session = Depends(db_session, scope="function")) -> dict[str, Any]:
        session.execute(text("SELECT 1"))
        return {"status": "ok", "database": session.get_bind().dialect.name,
                "broker": "redis" if settings.broker_url else "filesystem"}

    # ----------------------------------------------------------------- login

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str = "/") -> HTMLResponse:
        return render(request, "login.html", next=next if next.startswith("/") else "/")

    @app.post("/login", include_in_schema=False)
    def login(request: Request, username: str = Form(""), password: str = Form(""), next: str = Form("/"),
              csrf: str = Form(""), session: Session = Depends(db_session, scope="function")) -> Any:
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
                   session: Session = Depends(db_session, scope="function")) -> HTMLResponse:
        return stories_page(request, session, user)

    @app.get("/stories/new", response_class=HTMLResponse, include_in_schema=False)
    def new_story_page(request: Request, user: User = Depends(page_user),
                       session: Session = Depends(db_session, scope="function")) -> HTMLResponse:
        return render(request, "story_new.html", user=user, form={}, campaigns=_campaigns(session))

    @app.post("/stories/new", include_in_schema=False)
    def new_story(request: Request, title: str = Form(""), summary: str = Form(""), body: str = Form(""),
                  theme: str = Form(""), unit: str = Form(""), label: str = Form(""), alt: str = Form(""),
                  project: str = Form(""), campaign: str = Form(""), in_point: str = Form(""),
                  out_point: str = Form(""), csrf: str = Form(""), cover: UploadFile | None = File(None),
                  video: UploadFile | None = File(None), user: User = Depends(page_user),
                  session: Session = Depends(db_session, scope="function")) -> Any:
        check_csrf(request, csrf)
        require_role(user, "editor")
        form = {"title": title, "summary": summary, "body": body, "theme": theme, "unit": unit, "label": label,
                "alt": alt, "project": project, "campaign": campaign, "in_point": in_point, "out_point": out_point}
        with tempfile.TemporaryDirectory(dir=settings.cache_dir) as tmp:
            try:
                media = []
                for role, upload in (("cover", cover), ("video", video)):
                    if upload is not None and upload.filename:
                        media.append(_save_upload(upload, Path(tmp), role, alt if role == "cover" else ""))
                points = (_seconds(in_point, "入点"), _seconds(out_point, "出点"))
                if points != (None, None):
                    if not media or media[-1].role != "video":
                        raise ValidationError("in/out points need a video", "设置入点和出点须同时上传视频")
                    media[-1].in_point, media[-1].out_point = points
                created = create_story(session, open_storage(settings), StoryInput(
                    title=title, body_markdown=body, summary=summary, theme=theme, unit=unit, label=label,
                    project=project, campaign=campaign or None, media=media), actor=user)
            except FanoutError as exc:
                session.rollback()
                return render(request, "story_new.html", status_code=exc.http_status, user=user, form=form,
                              error=exc.message_zh, campaigns=_campaigns(session))
        return RedirectResponse(f"/stories/{created.id}", status_code=303)

    def story_view(request: Request, session: Session, story_id: int, user: User, status_code: int = 200,
                   error: str | None = None, form: dict[str, Any] | None = None) -> HTMLResponse:
        story = get_story(session, story_id)
        version = story.current
        deliveries = dispatch.deliveries_for(session, story_id=story_id)
        state = review.status(session, story_id)
        rejection = next((s for s in reversed(state["signatures"]) if s["decision"] == "reject"), None) \
            if version.review_state == "rejected" else None
        now = utcnow()
        slots = story_slots(session, story_id, user, now)
        can_schedule = version.review_state == "approved" \
            and any(user.has_role(role) for role in ("editor", "ops", "admin"))
        return render(request, "story.html", status_code=status_code, user=user, story=story, version=version,
                      deliveries=deliveries, channels=channel_states(deliveries), review_status=state,
                      rejection=rejection, error=error, slots=slots, can_schedule=can_schedule,
                      schedule_accounts=[{"id": a.id, "label": account_label(a)}
                                         for a in list_accounts(session, enabled_only=True)] if can_schedule else [],
                      schedule_pending=any(r["explicit"] and r["slot"].state == "filled" for r in slots),
                      schedule_form={"at": "", "accounts": [], **(form or {})},
                      schedule_min=f"{now.astimezone(schedule.ZONE):%Y-%m-%dT%H:%M}",
                      can_submit=version.review_state in ("draft", "rejected")
                      and (user.has_role("editor") or user.has_role("admin")),
                      can_withdraw=can_withdraw(session, story, version, user),
                      can_reapprove=3 in review.reviewer_levels(user)
                      and user.id not in review.authors_of(session, story),
                      can_retract=any(user.has_role(r) for r in ("editor", "ops", "admin")))

    @app.get("/stories/{story_id}", response_class=HTMLResponse, include_in_schema=False)
    def story_page(request: Request, story_id: int, user: User = Depends(page_user),
                   session: Session = Depends(db_session, scope="function")) -> HTMLResponse:
        return story_view(request, session, story_id, user)

    @app.post("/stories/{story_id}/submit", include_in_schema=False)
    def submit_page(request: Request, story_id: int, csrf: str = Form(""), user: User = Depends(page_user),
                    session: Session = Depends(db_session, scope="function")) -> Any:
        check_csrf(request, csrf)
        try:
            findings = review.submit(session, settings, story_id, user, queue=_queue())
        except FanoutError as exc:
            session.rollback()
            return story_view(request, session, story_id, user, exc.http_status, exc.message_zh)
        flash(request, f"已提交审核，等待初审（自动校对：{len(proofing.blocking(findings))} 个必须修改的问题，"
                       f"{len(proofing.warnings(findings))} 个提示）")
        return RedirectResponse(f"/stories/{story_id}", status_code=303)

    @app.post("/stories/{story_id}/withdraw", include_in_schema=False)
    def withdraw_page(request: Request, story_id: int, csrf: str = Form(""), user: User = Depends(page_user),
                      session: Session = Depends(db_session, scope="function")) -> Any:
        check_csrf(request, csrf)
        try:
            review.withdraw(session, story_id, user)
        except FanoutError as exc:
            session.rollback()
            return story_view(request, session, story_id, user, exc.http_status, exc.message_zh)
        flash(request, "已撤回，稿件回到草稿状态")
        return RedirectResponse(f"/stories/{story_id}", status_code=303)

    @app.post("/deliveries/{delivery_id}/reapprove", include_in_schema=False)
    def reapprove_page(request: Request, delivery_id: int, csrf: str = Form(""), user: User = Depends(page_user),
                       session: Session = Depends(db_session, scope="function")) -> Any:
        check_csrf(request, csrf)
        story_id = dispatch.get_delivery(session, delivery_id).story_id
        try:
            review.reapprove_delivery(session, settings, open_storage(settings), _queue(), delivery_id, user)
        except FanoutError as exc:
            session.rollback()
            return story_view(request, session, story_id, user, exc.http_status, exc.message_zh)
        flash(request, f"已重新审核发布任务 #{delivery_id}，继续发布")
        return RedirectResponse(f"/stories/{story_id}", status_code=303)

    @app.post("/stories/{story_id}/schedule", include_in_schema=False)
    def schedule_page(request: Request, story_id: int, at: str = Form(""), account: list[str] = Form([]),
                      csrf: str = Form(""), user: User = Depends(page_user),
                      session: Session = Depends(db_session, scope="function")) -> Any:
        """定时发布: the approved story at a Beijing time on the chosen accounts (an explicit slot)."""
        check_csrf(request, csrf)
        chosen = [a.strip() for a in account if a.strip()]
        try:
            slot = schedule.schedule_story(session, story_id, local_moment(at), chosen, actor=user)
        except FanoutError as exc:
            session.rollback()
            return story_view(request, session, story_id, user, exc.http_status, exc.message_zh,
                              {"at": at, "accounts": chosen})
        flash(request, f"已设定定时发布：{slot.release_at.astimezone(schedule.ZONE):%Y-%m-%d %H:%M}")
        return RedirectResponse(f"/stories/{story_id}", status_code=303)

    @app.post("/stories/{story_id}/schedule/{slot_id}/cancel", include_in_schema=False)
    def cancel_schedule_page(request: Request, story_id: int, slot_id: int, csrf: str = Form(""),
                             user: User = Depends(page_user),
                             session: Session = Depends(db_session, scope="function")) -> Any:
        check_csrf(request, csrf)
        # Columns, not the entity: unqueue locks and reads the slot itself (SELECT … FOR UPDATE).
        found = session.execute(select(Slot.story_id, Slot.series_id).where(Slot.id == slot_id)).first()
        try:
            if found is None or found.story_id != story_id:
                raise NotFound(f"story {story_id} has no slot {slot_id}", f"期次 {slot_id} 不存在")
            if found.series_id is not None:
                raise ValidationError("a series slot is taken out on the calendar", "栏目期次请在排期日历中撤下")
            slot = schedule.unqueue(session, slot_id, actor=user)
        except FanoutError as exc:
            session.rollback()
            return story_view(request, session, story_id, user, exc.http_status, exc.message_zh)
        flash(request, f"已取消定时发布：{slot.release_at.astimezone(schedule.ZONE):%Y-%m-%d %H:%M}")
        return RedirectResponse(f"/stories/{story_id}", status_code=303)

    # ----------------------------------------------------------------- review (三审三校)

    @app.get("/review", response_class=HTMLResponse, include_in_schema=False)
    def review_inbox(request: Request, user: User = Depends(page_user),
                     session: Session = Depends(db_session, scope="function")) -> HTMLResponse:
        sections = []
        for level, stories in review.inbox(session, user).items():
            rows = []
            for story in stories:
                version = story.current
                findings = review.latest_findings(session, version)
                author = session.get(User, story.created_by_id) if story.created_by_id else None
                rows.append({
                    "story": story, "version": version, "author": author,
                    "blocking": len(proofing.blocking(findings)), "warnings": len(proofing.warnings(findings)),
                    "questions": [q for q in review.open_questions(session, version)
                                  if q.from_level == level - 1 and q.answer is None],
                })
            sections.append({"level": level, "rows": rows})
        return render(request, "review_inbox.html", user=user, sections=sections, counts=review.counts(session),
                      questions=questions_for(session, user))

    def review_view(request: Request, session: Session, story_id: int, user: User, status_code: int = 200,
                    error: str | None = None, form: dict[str, Any] | None = None) -> HTMLResponse:
        story, version = review.current_version(session, story_id)
        level = review.pending_level(version)
        storage = open_storage(settings)
        shown = review.previews(session, settings, storage, version)
        # While the version waits for a level, run the checks the sign-off will run, so the
        # warnings (and their keys) the page asks to acknowledge are the ones sign() checks.
        findings = review.run_proof(session, settings, version, "view", shown, store=False) if level \
            else review.latest_findings(session, version)
        token = preview_token(preview_secret, version.id)
        base = f"/preview/{version.id}/{token}/"
        previews = []
        for p in sorted(shown, key=lambda p: (PREVIEW_ORDER.get(p.account.channel, len(PREVIEW_ORDER)),
                                             p.account.channel, p.account.name)):
            view: dict[str, Any] = {
                "account": p.account, "error": p.error, "hash": (p.post_hash or "")[:12], "srcdoc": None,
                "fields": [],
                "limits": [f for f in findings if f.channel == p.account.channel and f.code in ("limit", "render")],
            }
            fields = dict(p.post.fields) if p.post else {}
            if "page_html" in fields:
                view["srcdoc"] = frame_document(str(fields["page_html"]), f"{base}stories/{story.id}/")
            elif "content_html" in fields:
                view["srcdoc"] = templates.get_template("review_frame.html").render(
                    csp=FRAME_CSP, base=base, fields=fields)
            elif p.post:
                view["fields"] = [(k, v) for k, v in fields.items() if isinstance(v, (str, int, float))]
            previews.append(view)
        old = review.last_approved_version(story, version)
        author = session.get(User, story.created_by_id) if story.created_by_id else None
        levels = review.reviewer_levels(user)
        questions = review.open_questions(session, version)
        form = form or {}
        acked = set(form.get("ack", ()))
        refusal = sign_refusal(session, story, version, user)
        return render(
            request, "review.html", status_code=status_code, user=user, story=story, version=version,
            author=author, level=level, status=review.status(session, story_id), findings=findings,
            blocking=proofing.blocking(findings), warnings=proofing.warnings(findings), acked=acked,
            previews=previews, old=old, diff=version_diff(old, version), error=error, form=form,
            refusal=refusal, can_ask=level in (1, 2) and refusal is None,
            answerable=[q for q in questions if q.answer is None and q.from_level + 1 in levels
                        and user.id not in review.authors_of(session, story)],
            questions=questions)

    @app.get("/review/{story_id}", response_class=HTMLResponse, include_in_schema=False)
    def review_page(request: Request, story_id: int, user: User = Depends(page_user),
                    session: Session = Depends(db_session, scope="function")) -> HTMLResponse:
        return review_view(request, session, story_id, user)

    @app.post("/review/{story_id}/sign", include_in_schema=False)
    def sign_page(request: Request, story_id: int, decision: str = Form(""), opinion: str = Form(""),
                  ack: list[str] = Form([]), level: str = Form(""), csrf: str = Form(""),
                  user: User = Depends(page_user), session: Session = Depends(db_session, scope="function")) -> Any:
        check_csrf(request, csrf)
        form = {"opinion": opinion, "ack": ack}
        try:
            if decision not in ("approve", "reject"):
                raise ValidationError(f"decision must be approve or reject, not {decision!r}", "请选择通过或退回")
            signed_level = int(level) if level.strip().isdigit() else None
            signature = review.sign(session, settings, open_storage(settings), story_id, user,
                                    approve=decision == "approve", opinion=opinion, acknowledge=ack,
                                    level=signed_level)
        except FanoutError as exc:
            session.rollback()
            return review_view(request, session, story_id, user, exc.http_status, exc.message_zh, form)
        verdict = "通过" if signature.decision == "approve" else "退回"
        flash(request, f"已签署{review.LEVEL_ZH[signature.level]}：{verdict}")
        return RedirectResponse(f"/review/{story_id}", status_code=303)

    @app.post("/review/{story_id}/ask", include_in_schema=False)
    def ask_page(request: Request, story_id: int, question: str = Form(""), csrf: str = Form(""),
                 user: User = Depends(page_user), session: Session = Depends(db_session, scope="function")) -> Any:
        check_csrf(request, csrf)
        try:
            asked = review.escalate(session, story_id, user, question)
        except FanoutError as exc:
            session.rollback()
            return review_view(request, session, story_id, user, exc.http_status, exc.message_zh,
                               {"question": question})
        flash(request, f"已向{review.LEVEL_ZH[asked.from_level + 1]}请示")
        return RedirectResponse(f"/review/{story_id}", status_code=303)

    @app.post("/review/questions/{question_id}/answer", include_in_schema=False)
    def answer_page(request: Request, question_id: int, answer: str = Form(""), csrf: str = Form(""),
                    user: User = Depends(page_user), session: Session = Depends(db_session, scope="function")) -> Any:
        check_csrf(request, csrf)
        asked = session.get(ReviewQuestion, question_id)
        story_id = session.get(StoryVersion, asked.version_id).story_id if asked else None
        try:
            review.answer(session, question_id, user, answer)
        except FanoutError as exc:
            if story_id is None:
                raise
            session.rollback()
            return review_view(request, session, story_id, user, exc.http_status, exc.message_zh,
                               {"answer": answer, "answer_to": question_id})
        flash(request, "已答复请示")
        return RedirectResponse(f"/review/{story_id}", status_code=303)

    @app.get("/preview/{version_id}/{token}/{path:path}", include_in_schema=False)
    def preview_file(version_id: int, token: str, path: str, session: Session = Depends(db_session, scope="function")) -> Response:
        """Media and stylesheet of a preview iframe (no cookie: the token is the permission)."""
        if not hmac.compare_digest(token.encode(), preview_token(preview_secret, version_id).encode()):
            raise HTTPException(404)
        headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}
        stylesheet = review.preview_stylesheet("website")
        if stylesheet and path == stylesheet[0]:
            return Response(stylesheet[1], media_type="text/css", headers=headers)
        match = MEDIA_PATH.fullmatch(path)
        version = session.get(StoryVersion, version_id) if match else None
        if version is None:
            raise HTTPException(404)
        record = session.scalar(select(RenditionRecord).where(
            RenditionRecord.sha256 == match.group(1),
            RenditionRecord.asset_sha256.in_([m.asset_sha256 for m in version.media])).limit(1))
        if record is None:
            raise HTTPException(404)
        return FileResponse(open_storage(settings).local_path(record.storage_key), media_type=record.mime,
                            headers=headers)

    # ----------------------------------------------------------------- audit & proofing word lists

    @app.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    def audit_page(request: Request, story: str = "", user: User = Depends(page_user),
                   session: Session = Depends(db_session, scope="function")) -> HTMLResponse:
        require_role(user, "ops")
        story_id = int(story) if story.strip().isdigit() else None
        return render(request, "audit.html", user=user, events=audit.events(session, story_id=story_id),
                      story_id=story_id)

    def proofing_view(request: Request, user: User, status_code: int = 200, error: str | None = None,
                      error_list: str | None = None, texts: dict[str, str] | None = None) -> HTMLResponse:
        lists = {name: (texts or {}).get(name) or proofing.read_word_list(settings, name)
                 for name in proofing.WORD_LISTS}
        counts = {name: len(proofing.parse_word_list(name, lists[name], strict=False)) for name in lists}
        return render(request, "proofing.html", status_code=status_code, user=user, lists=lists, counts=counts,
                      error=error, error_list=error_list, names_zh=proofing.LIST_NAMES_ZH)

    @app.get("/admin/proofing", response_class=HTMLResponse, include_in_schema=False)
    def proofing_page(request: Request, user: User = Depends(page_user)) -> HTMLResponse:
        require_role(user, "admin")
        return proofing_view(request, user)

    @app.post("/admin/proofing", include_in_schema=False)
    def proofing_save(request: Request, name: str = Form(""), text: str = Form(""), csrf: str = Form(""),
                      user: User = Depends(page_user), session: Session = Depends(db_session, scope="function")) -> Any:
        check_csrf(request, csrf)
        require_role(user, "admin")
        try:
            before = set(proofing.parse_word_list(name, proofing.read_word_list(settings, name), strict=False))
            entries = proofing.write_word_list(settings, name, text)
        except FanoutError as exc:
            return proofing_view(request, user, exc.http_status, exc.message_zh, name,
                                 {name: text} if name in proofing.WORD_LISTS else None)
        after = set(proofing.parse_word_list(name, proofing.read_word_list(settings, name), strict=False))
        audit.record(session, actor=user, action="proofing", object_type="wordlist", object_id=name,
                     summary=f"saved the {name} list: {entries} entries "
                             f"(+{len(after - before)} -{len(before - after)})",
                     data={"entries": entries, "added": sorted(after - before)[:50],
                           "removed": sorted(before - after)[:50]})
        flash(request, f"已保存{proofing.LIST_NAMES_ZH[name]}（{entries} 条）")
        return RedirectResponse("/admin/proofing", status_code=303)

    @app.post("/stories/{story_id}/retract", include_in_schema=False)
    def retract_page(request: Request, story_id: int, reason: str = Form(""), csrf: str = Form(""),
                     user: User = Depends(page_user), session: Session = Depends(db_session, scope="function")) -> Any:
        """撤稿: delete through the APIs, cancel what was not sent, list what a person removes."""
        check_csrf(request, csrf)
        try:
            plan = retraction.retract_story(session, _queue(), story_id, reason, user)
        except FanoutError as exc:
            session.rollback()
            return story_view(request, session, story_id, user, exc.http_status, exc.message_zh)
        message = f"已撤稿：{len(plan.by_api)} 个渠道正在删除，{len(plan.cancelled)} 个未发出的任务已取消"
        hand = plan.by_hand + plan.to_check
        if hand:
            message += "；需人工处理：" + "、".join(
                f"{CHANNEL_ZH.get(r['channel'], r['channel'])}「{r['account']}」（{r['why']}）" for r in hand)
        flash(request, message)
        return RedirectResponse(f"/stories/{story_id}", status_code=303)

    @app.post("/stories/{story_id}/publish", include_in_schema=False)
    def publish_page(request: Request, story_id: int, csrf: str = Form(""), user: User = Depends(page_user),
                     session: Session = Depends(db_session, scope="function")) -> RedirectResponse:
        check_csrf(request, csrf)
        require_role(user, "editor", "ops")
        dispatch.plan_publication(session, _queue(), story_id, actor=user)
        return RedirectResponse(f"/stories/{story_id}", status_code=303)

    # ----------------------------------------------------------------- JSON API

    @app.get("/api/stories", tags=["stories"])
    def api_stories(limit: int = 100, offset: int = 0, user: User = Depends(api_user),
                    session: Session = Depends(db_session, scope="function")) -> list[dict[str, Any]]:
        return [_story_json(s) for s in list_stories(session, limit=min(limit, 500), offset=offset)]

    @app.post("/api/stories", tags=["stories"], status_code=201)
    def api_create_story(body: StoryCreate, user: User = Depends(api_user),
                         session: Session = Depends(db_session, scope="function")) -> dict[str, Any]:
        require_role(user, "editor")
        story = create_story(session, open_storage(settings), StoryInput(**body.model_dump()), actor=user)
        return _story_json(story)

    @app.get("/api/stories/{story_id}", tags=["stories"])
    def api_story(story_id: int, user: User = Depends(api_user),
                  session: Session = Depends(db_session, scope="function")) -> dict[str, Any]:
        story = get_story(session, story_id)
        data = _story_json(story)
        data["deliveries"] = [dispatch.delivery_view(d) for d in dispatch.deliveries_for(session, story_id=story_id)]
        return data

    @app.post("/api/stories/{story_id}/publish", tags=["deliveries"])
    def api_publish(story_id: int, user: User = Depends(api_user),
                    session: Session = Depends(db_session, scope="function")) -> dict[str, Any]:
        require_role(user, "editor", "ops")
        result = dispatch.plan_publication(session, _queue(), story_id, actor=user)
        return {"story_id": result.story_id, "version": result.version, "created": result.created,
                "existing": result.existing}

    @app.post("/api/stories/{story_id}/submit", tags=["review"])
    def api_submit(story_id: int, user: User = Depends(api_user),
                   session: Session = Depends(db_session, scope="function")) -> dict[str, Any]:
        """提交审核：当前版本进入初审；返回自动校对结果。"""
        findings = review.submit(session, settings, story_id, user, queue=_queue())
        return {**review.status(session, story_id), "findings": [f.to_json() for f in findings]}

    @app.post("/api/stories/{story_id}/withdraw", tags=["review"])
    def api_withdraw(story_id: int, user: User = Depends(api_user),
                     session: Session = Depends(db_session, scope="function")) -> dict[str, Any]:
        """撤回送审（作者，首次签署之前）。"""
        review.withdraw(session, story_id, user)
        return review.status(session, story_id)

    @app.post("/api/stories/{story_id}/review", tags=["review"])
    def api_review(story_id: int, body: ReviewDecision, user: User = Depends(api_user),
                   session: Session = Depends(db_session, scope="function")) -> dict[str, Any]:
        """签署当前等待的审核级别：通过（须确认全部提示）或退回（须填写意见）。"""
        review.sign(session, settings, open_storage(settings), story_id, user, approve=body.decision == "approve",
                    opinion=body.opinion, acknowledge=body.acknowledge, level=body.level)
        return review.status(session, story_id)

    @app.get("/api/stories/{story_id}/review", tags=["review"])
    def api_review_status(story_id: int, user: User = Depends(api_user),
                          session: Session = Depends(db_session, scope="function")) -> dict[str, Any]:
        """审核状态：版本、签署记录、校对结果、请示。"""
        return review.status(session, story_id)

    @app.get("/api/audit", tags=["audit"])
    def api_audit(story_id: int | None = None, limit: int = 200, user: User = Depends(api_user),
                  session: Session = Depends(db_session, scope="function")) -> list[dict[str, Any]]:
        """审计记录（管理员、运维），新的在前。"""
        require_role(user, "ops")
        return [{"id": e.id, "at": e.at.isoformat(), "actor": e.actor_name, "action": e.action,
                 "object_type": e.object_type, "object_id": e.object_id, "story_version": e.story_version,
                 "summary": e.summary, "data": e.data}
                for e in audit.events(session, story_id=story_id, limit=max(1, min(limit, 1000)))]

    @app.get("/api/deliveries", tags=["deliveries"])
    def api_deliveries(story_id: int | None = None, user: User = Depends(api_user),
                       session: Session = Depends(db_session, scope="function")) -> list[dict[str, Any]]:
        return [dispatch.delivery_view(d) for d in dispatch.deliveries_for(session, story_id=story_id)]

    @app.get("/api/accounts", tags=["accounts"])
    def api_accounts(user: User = Depends(api_user), session: Session = Depends(db_session, scope="function")) -> list[dict[str, Any]]:
        return [public_view(a) for a in list_accounts(session)]

    @app.get("/api/me", tags=["users"])
    def api_me(user: User = Depends(api_user)) -> dict[str, Any]:
        return {"id": user.id, "username": user.username, "roles": user.role_names, "unit": user.unit}

    return app


def _seconds(text: str, what: str) -> float | None:
    """A form's seconds field: empty is None; "75", "75.5" or "1:15" (minutes:seconds)."""
    text = text.strip()
    if not text:
        return None
    try:
        if ":" in text:
            minutes, seconds = text.split(":", 1)
            return int(minutes) * 60 + float(seconds)
        return float(text)
    except ValueError:
        raise ValidationError(f"{what} is not a number of seconds: {text!r}", f"{what}应为秒数，如 75 或 1:15") from None


def _campaigns(session: Session) -> list[dict[str, Any]]:
    """Campaigns for the story form's select, with their label templates shown beside the name."""
    from services.models import Campaign

    return [{"id": c.id, "name": c.name, "template": c.label_template}
            for c in session.scalars(select(Campaign).order_by(Campaign.id.desc()))]


def _story_json(story) -> dict[str, Any]:  # noqa: ANN001
    version = story.current
    return {
        "id": story.id, "status": story.status, "version": version.number, "title": version.title,
        "summary": version.summary, "theme": version.theme, "unit": version.unit, "label": version.label,
        "project": version.project, "campaign_id": version.campaign_id,
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


