"""运维 (ops) pages: the dashboard, the failure list with its actions, and Prometheus metrics.

`/ops` is the dashboard (services/dashboard.py); its panel reloads itself every
`REFRESH_SECONDS` from `/ops/panel` (an HTML fragment swapped in place: no full reload, the
scroll position and open forms stay); `/api/ops/overview` gives the same numbers as JSON.

`/ops/failures` lists failed, unknown, held and stuck deliveries with the platform's reason,
filterable by channel, account and error code, with 重试 / 重新核实 / 放弃 actions
(services/failures.py: role checks, audit, refusals). `/metrics` is the Prometheus text
exposition (services/metrics.py); with FANOUT_METRICS_TOKEN set it wants `Authorization:
Bearer <token>`. Routes are thin: parse, call one service function, map its errors.
"""
# No `from __future__ import annotations`: FastAPI resolves the routes' Annotated aliases,
# which are local to ops_router, at run time.
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from services import account_health, dashboard, failures, metrics, reports
from services.config import get_settings
from services.errors import FanoutError, PermissionDenied
from services.models import ChannelAccount, User
from services.users import require_role

KIND_ZH = {"failed": "失败", "unknown": "结果待核实", "held": "已暂停", "stuck": "卡住"}
REFRESH_SECONDS = 15


def ops_router(render: Callable[..., HTMLResponse], flash: Callable[[Request, str], None]) -> APIRouter:
    from services.web import app as web

    PageUser = Annotated[User, Depends(web.page_user)]
    Db = Annotated[Session, Depends(web.db_session, scope="function")]
    FormText = Annotated[str, Form()]
    router = APIRouter()

    def page(request: Request, session: Session, user: User, channel: str = "", account: str = "", code: str = "",
             status_code: int = 200, error: str | None = None) -> HTMLResponse:
        require_role(user, "ops")
        account_id = int(account) if account.strip().isdigit() else None
        everything = failures.failures(session, get_settings())
        rows = everything if not (channel or account_id or code) else failures.failures(
            session, get_settings(), channel=channel or None, account_id=account_id, code=code or None)
        accounts = list(session.scalars(select(ChannelAccount).order_by(ChannelAccount.channel, ChannelAccount.name)))
        codes = sorted({r.code for r in everything if r.code})
        return render(request, "ops_failures.html", status_code=status_code, user=user, rows=rows,
                      counts=failures.counts(rows), accounts=accounts, codes=codes, error=error, KIND_ZH=KIND_ZH,
                      filters={"channel": channel, "account": account, "code": code},
                      back="/ops/failures" + ("?" + urlencode({k: v for k, v in
                                                                (("channel", channel), ("account", account),
                                                                 ("code", code)) if v}) if channel or account or code else ""))

    def panel_context(session: Session) -> dict[str, Any]:
        data = dashboard.overview(session, get_settings())
        return {"o": data, "refresh": REFRESH_SECONDS, "KIND_ZH": KIND_ZH}

    @router.get("/ops", response_class=HTMLResponse, include_in_schema=False)
    def dashboard_page(request: Request, user: PageUser, session: Db) -> HTMLResponse:
        require_role(user, "ops")
        return render(request, "ops_dashboard.html", user=user, **panel_context(session))

    @router.get("/ops/panel", response_class=HTMLResponse, include_in_schema=False)
    def dashboard_panel(request: Request, user: PageUser, session: Db) -> HTMLResponse:
        require_role(user, "ops")
        return render(request, "_ops_panel.html", user=user, **panel_context(session))

    @router.get("/api/ops/overview", tags=["ops"])
    def api_overview(user: PageUser, session: Db) -> dict[str, Any]:
        require_role(user, "ops")
        data = dashboard.overview(session, get_settings())
        return {
            "now": data["now"].isoformat(), "queue_depth": data["queue_depth"], "totals": data["totals"],
            "by_channel": data["by_channel"], "outbox_waiting": data["outbox_waiting"], "cache": data["cache"],
            "render": data["render"],
            "oldest_waiting": data["oldest_waiting"],
            "beat": {"at": data["beat"]["at"].isoformat() if data["beat"]["at"] else None,
                     "silent": data["beat"]["silent"], "summary": data["beat"]["summary"]},
            "workers": [{"hostname": w.hostname, "queues": w.queues, "pool": w.pool, "concurrency": w.concurrency,
                         "last_seen": w.last_seen.isoformat(),
                         "load": [w.load_1m, w.load_5m, w.load_15m], "cpu_count": w.cpu_count,
                         "rss_bytes": w.rss_bytes, "tasks_active": w.tasks_active, "tasks_done": w.tasks_done}
                        for w in data["workers"]],
            "next_releases": [{"slot_id": r["slot"].id, "release_at": r["slot"].release_at.isoformat(),
                               "has_story": r["has_story"]} for r in data["next_releases"]],
            "activity": {"hours": data["activity"]["hours"], "days": data["activity"]["days"],
                         "failure_rate_24h": data["activity"]["failure_rate_24h"],
                         "failure_rate_30d": data["activity"]["failure_rate_30d"]},
        }

    @router.get("/ops/accounts", response_class=HTMLResponse, include_in_schema=False)
    def accounts_page(request: Request, user: PageUser, session: Db) -> HTMLResponse:
        require_role(user, "ops")
        rows = account_health.health(session, get_settings())
        return render(request, "ops_accounts.html", user=user, rows=rows)

    @router.post("/ops/accounts/{account_id}/login", include_in_schema=False)
    def account_login(request: Request, account_id: int, user: PageUser, session: Db, csrf: FormText = "") -> Any:
        web.check_csrf(request, csrf)
        require_role(user, "ops")
        try:
            account = account_health.record_login(session, account_id, user)
        except FanoutError as exc:
            session.rollback()
            flash(request, exc.message_zh)
            return RedirectResponse("/ops/accounts", status_code=303)
        flash(request, f"已登记「{account.name}」的视频号扫码登录")
        return RedirectResponse("/ops/accounts", status_code=303)

    @router.get("/ops/failures", response_class=HTMLResponse, include_in_schema=False)
    def failures_page(request: Request, user: PageUser, session: Db, channel: str = "", account: str = "",
                      code: str = "") -> HTMLResponse:
        return page(request, session, user, channel, account, code)

    def act(request: Request, session: Session, user: User, csrf: str, back: str, run: Callable[[], Any],
            done: str) -> Any:
        web.check_csrf(request, csrf)
        try:
            run()
        except FanoutError as exc:
            session.rollback()
            return page(request, session, user, status_code=exc.http_status, error=exc.message_zh)
        flash(request, done)
        return RedirectResponse(back if back.startswith("/ops/failures") else "/ops/failures", status_code=303)

    @router.post("/ops/deliveries/{delivery_id}/retry", include_in_schema=False)
    def retry(request: Request, delivery_id: int, user: PageUser, session: Db, csrf: FormText = "",
              back: FormText = "") -> Any:
        return act(request, session, user, csrf, back,
                   lambda: failures.retry(session, web._queue(), delivery_id, user), f"已重试发布任务 #{delivery_id}")

    @router.post("/ops/deliveries/{delivery_id}/reconcile", include_in_schema=False)
    def reconcile(request: Request, delivery_id: int, user: PageUser, session: Db, csrf: FormText = "",
                  back: FormText = "") -> Any:
        return act(request, session, user, csrf, back,
                   lambda: failures.reconcile(session, web._queue(), delivery_id, user),
                   f"已请求平台重新核实发布任务 #{delivery_id}")

    @router.post("/ops/deliveries/{delivery_id}/give-up", include_in_schema=False)
    def give_up(request: Request, delivery_id: int, user: PageUser, session: Db, reason: FormText = "",
                csrf: FormText = "", back: FormText = "") -> Any:
        return act(request, session, user, csrf, back,
                   lambda: failures.give_up(session, delivery_id, user, reason), f"已放弃发布任务 #{delivery_id}")

    def report_range(start: str, end: str):  # noqa: ANN202 - (date, date)
        from datetime import date, datetime

        from services.errors import ValidationError

        first, last = reports.quarter_of(datetime.now(reports.ZONE).date())
        try:
            return (date.fromisoformat(start) if start else first), (date.fromisoformat(end) if end else last)
        except ValueError:
            raise ValidationError(f"dates must be YYYY-MM-DD: {start!r} {end!r}", "日期格式应为 YYYY-MM-DD") from None

    @router.get("/reports", response_class=HTMLResponse, include_in_schema=False)
    def reports_page(request: Request, user: PageUser, session: Db, start: str = "", end: str = "") -> HTMLResponse:
        require_role(user, "editor", "ops", "admin")
        first, last = report_range(start, end)
        report = reports.statistics(session, first, last)
        query = urlencode({"start": first.isoformat(), "end": last.isoformat()})
        return render(request, "reports.html", user=user, report=report, query=query,
                      start=first.isoformat(), end=last.isoformat())

    @router.get("/reports/export.{fmt}", include_in_schema=False)
    def reports_export(fmt: str, user: PageUser, session: Db, start: str = "", end: str = "") -> Response:
        require_role(user, "editor", "ops", "admin")
        if fmt not in ("csv", "xlsx"):
            from services.errors import NotFound

            raise NotFound(f"no export format {fmt!r}", "不支持的导出格式")
        first, last = report_range(start, end)
        report = reports.statistics(session, first, last)
        body = reports.to_xlsx(report) if fmt == "xlsx" else reports.to_csv(report)
        media = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if fmt == "xlsx"
                 else "text/csv; charset=utf-8")
        name = f"fanout-report-{first:%Y%m%d}-{last:%Y%m%d}.{fmt}"
        return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @router.get("/metrics", include_in_schema=False)
    def metrics_page(request: Request, session: Db) -> Response:
        token = get_settings().metrics_token
        if token and request.headers.get("authorization", "") != f"Bearer {token}":
            raise PermissionDenied("metrics need the bearer token", "需要指标访问令牌")
        body, content_type = metrics.exposition(session, get_settings())
        return Response(body, media_type=content_type)

    return router
