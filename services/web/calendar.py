"""The schedule calendar (排期日历): month and week views of the slots, per series or overall.

Editors see each slot's state (空档 open, 已排期 filled, 已发布 released, 已错过 missed, 已取消
cancelled), its story, the per-channel state of its deliveries and a 缺稿 flag on open slots
due within `gap_lead_workdays` working days; they queue an approved story into an open slot,
take a queued one out or move it to another day, and release a filled or missed one by hand.
An admin also sees the freeze switch: 暂停全部发布 with a reason (a day of national mourning)
holds every release and queued delivery, 恢复发布 lets them go (services/schedule.py freeze/resume).

Routes are thin, as in app.py: parse the request, call one services.schedule function, map its
typed errors. The permission checks are the service's (actor=user: editor or ops). An action
redirects (303) back to the view the editor came from (view/date/series travel as hidden
fields) with the outcome as a flash message. `/api/calendar` gives the same entries as JSON;
`/calendar/export.csv|.xlsx` one series' plan as a table (services/exports.py).

`calendar_router(render, flash)` builds the router around app.py's own page renderer and flash
helper, so the calendar shares the nav, the CSRF token and the messages of every other page.
"""

# No `from __future__ import annotations`: the routes' Annotated aliases are local to
# calendar_router, and FastAPI resolves string annotations against module globals only.
import dataclasses
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services import schedule
from services.config import get_settings
from services.errors import FanoutError, NotFound, ValidationError
from services.models import ControlFlag, Slot, Story, StoryVersion, User, utcnow

VIEWS = ("month", "week")
WEEKDAYS_ZH = ("一", "二", "三", "四", "五", "六", "日")
STORY_CHOICES = 50  # approved stories offered in an open slot's select
API_MAX_DAYS = 400  # the widest range /api/calendar answers
ERROR_KEY = "calendar_error"  # the session key of a refused action's message (shown once, as an alert)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --------------------------------------------------------------------------- view helpers


def month_day(day: date) -> str:
    return f"{day.month}月{day.day}日"


def parse_day(text: str, what: str = "日期") -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"{what} must be YYYY-MM-DD, got {text!r}", f"{what}格式应为 YYYY-MM-DD") from None


def view_range(view: str, anchor: date) -> tuple[date, date, date, date]:
    """(first, last, previous, next): the days a view shows (whole Monday-first weeks) and the
    anchors of the views before and after it."""
    if view == "week":
        first = anchor - timedelta(days=anchor.weekday())
        return first, first + timedelta(days=6), anchor - timedelta(days=7), anchor + timedelta(days=7)
    month_first = anchor.replace(day=1)
    next_month = (month_first + timedelta(days=32)).replace(day=1)
    month_last = next_month - timedelta(days=1)
    first = month_first - timedelta(days=month_first.weekday())
    last = month_last + timedelta(days=6 - month_last.weekday())
    return first, last, (month_first - timedelta(days=1)).replace(day=1), next_month


def calendar_url(view: str = "month", day: date | str | None = None, series: int | str | None = None,
                 slot_id: int | None = None) -> str:
    """The calendar page of a view; only well-formed values are kept (the redirect target of a
    form whose hidden fields came back from the browser)."""
    params: dict[str, str] = {"view": view if view in VIEWS else "month"}
    if isinstance(day, str):
        try:
            day = date.fromisoformat(day.strip())
        except ValueError:
            day = None
    if day is not None:
        params["date"] = day.isoformat()
    if series is not None and str(series).strip().isdigit():
        params["series"] = str(series).strip()
    return f"/calendar?{urlencode(params)}" + (f"#slot-{slot_id}" if slot_id else "")


def release_moment(entry: schedule.CalendarEntry) -> datetime:
    hour, minute = (int(x) for x in entry.time.split(":"))
    return datetime.combine(entry.day, time(hour, minute), schedule.ZONE)


def approved_choices(session: Session, series_id: int) -> list[tuple[int, str]]:
    """The newest approved stories (current version approved) not already queued in the series:
    what an open slot of that series offers."""
    current = (select(StoryVersion.story_id, func.max(StoryVersion.number).label("number"))
               .group_by(StoryVersion.story_id).subquery())
    queued = select(Slot.story_id).where(Slot.series_id == series_id, Slot.story_id.is_not(None),
                                         Slot.state.in_(["filled", "released"]))
    rows = session.execute(
        select(StoryVersion.story_id, StoryVersion.title)
        .join(current, (current.c.story_id == StoryVersion.story_id) & (current.c.number == StoryVersion.number))
        .where(StoryVersion.review_state == "approved", StoryVersion.story_id.not_in(queued))
        .order_by(StoryVersion.story_id.desc()).limit(STORY_CHOICES))
    return [(story_id, title) for story_id, title in rows]


def note_zh(note: str) -> str:
    """A slot's note (written in English by services/schedule.py) in Chinese, as the exported
    tables show it; services/exports.py keeps those translations."""
    if not note:
        return ""
    from services import exports

    return exports.note_zh(note)


def entry_json(entry: schedule.CalendarEntry) -> dict[str, Any]:
    data = dataclasses.asdict(entry)
    data["day"] = entry.day.isoformat()
    return data


def attachment(filename: str, fallback: str) -> str:
    """Content-Disposition for a download with a Chinese name (RFC 6266 / RFC 5987)."""
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


# --------------------------------------------------------------------------- routes


def calendar_router(render: Callable[..., HTMLResponse], flash: Callable[[Request, str], None]) -> APIRouter:
    """The calendar's routes, rendering and flashing through app.py's helpers."""
    # app.py imports this module; by the time it calls this factory its helpers are all defined.
    from services.web import app as web

    channel_zh, state_zh = web.CHANNEL_ZH, web.STATE_ZH
    PageUser = Annotated[User, Depends(web.page_user)]  # type aliases
    Db = Annotated[Session, Depends(web.db_session, scope="function")]  # commits before the response
    FormText = Annotated[str, Form()]
    router = APIRouter()

    def cards(session: Session, entries: list[schedule.CalendarEntry], user: User,
              now: datetime) -> list[dict[str, Any]]:
        can_act = any(user.has_role(role) for role in ("editor", "ops", "admin"))
        choices: dict[int, list[tuple[int, str]]] = {}
        out = []
        for entry in entries:
            due = release_moment(entry) <= now
            queueable = can_act and entry.state == "open" and not due and entry.series_id is not None
            if queueable and entry.series_id not in choices:
                choices[entry.series_id] = approved_choices(session, entry.series_id)
            out.append({
                "entry": entry, "due": due, "note": note_zh(entry.note),
                "channels": [{**d, "channel_zh": channel_zh.get(d["channel"], d["channel"]),
                              "state_zh": state_zh.get(d["state"], d["state"]), "url": None, "error": None}
                             for d in entry.deliveries],
                "choices": choices.get(entry.series_id, []) if queueable else None,
                "can_unqueue": can_act and entry.state == "filled" and not due,
                "can_move": can_act and entry.state == "filled" and not due and entry.series_id is not None,
                "can_release": can_act and entry.state in ("filled", "missed") and entry.story_id is not None,
            })
        return out

    @router.get("/calendar", response_class=HTMLResponse, include_in_schema=False)
    def calendar_page(request: Request, user: PageUser, session: Db, view: str = "month",
                      day: Annotated[str, Query(alias="date")] = "", series: str = "") -> HTMLResponse:
        settings = get_settings()
        if view not in VIEWS:
            raise ValidationError(f"view must be month or week, not {view!r}", "视图只能是月视图或周视图")
        now = utcnow()
        today = now.astimezone(schedule.ZONE).date()
        anchor = parse_day(day) if day.strip() else today
        chosen = schedule.find_series(session, series.strip()) if series.strip() else None
        first, last, previous, following = view_range(view, anchor)
        entries = schedule.calendar(session, first, last, series_id=chosen.id if chosen else None, now=now,
                                    lead_workdays=settings.gap_lead_workdays)
        by_day: dict[date, list[dict[str, Any]]] = {}
        for card in cards(session, entries, user, now):
            by_day.setdefault(card["entry"].day, []).append(card)
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        gaps = [slot for slot in schedule.gaps(session, now=now, lead_workdays=settings.gap_lead_workdays)
                if chosen is None or slot.series_id == chosen.id]
        freeze = session.get(ControlFlag, schedule.FREEZE) if schedule.is_frozen(session) else None
        return render(
            request, "calendar.html", user=user, view=view, anchor=anchor, today=today, first=first, last=last,
            weeks=[days[i:i + 7] for i in range(0, len(days), 7)], by_day=by_day,
            series_list=schedule.list_series(session), chosen=chosen, gaps=gaps,
            lead_workdays=settings.gap_lead_workdays, freeze=freeze, can_freeze=user.has_role("admin"),
            error=request.session.pop(ERROR_KEY, None), weekdays=WEEKDAYS_ZH, month_day=month_day,
            link=lambda v, d: calendar_url(v, d, chosen.id if chosen else None), previous=previous,
            series_link=lambda series_id: calendar_url(view, anchor, series_id), following=following,
            states_zh=schedule.SLOT_STATES_ZH, counts=Counter(e.state for e in entries))

    def act(request: Request, session: Session, back: tuple[str, str, str], slot_id: int | None,
            action: Callable[[], tuple[str, Slot | None]]) -> RedirectResponse:
        """Run one action; flash its outcome (or the refusal, rolled back) and go back to the view
        the form came from, at the card of the slot the action left the story in (none for the
        freeze switch, which acts on no slot)."""
        view, day, series = back
        try:
            message, slot = action()
        except FanoutError as exc:
            session.rollback()
            request.session[ERROR_KEY] = exc.message_zh
            return RedirectResponse(calendar_url(view, day, series, slot_id=slot_id), status_code=303)
        flash(request, message)
        if slot is None:
            return RedirectResponse(calendar_url(view, day, series), status_code=303)
        if slot.id != slot_id:  # moved: show the view of the day it went to
            day = slot.day.isoformat()
        return RedirectResponse(calendar_url(view, day, series, slot_id=slot.id), status_code=303)

    def slot_of(session: Session, slot_id: int) -> Slot:
        slot = session.get(Slot, slot_id)
        if slot is None:
            raise NotFound(f"no slot {slot_id}", f"期次 {slot_id} 不存在")
        return slot

    @router.post("/calendar/slots/{slot_id}/queue", include_in_schema=False)
    def queue_page(request: Request, slot_id: int, user: PageUser, session: Db, story_id: FormText = "",
                   view: FormText = "month", day: Annotated[str, Form(alias="date")] = "", series: FormText = "",
                   csrf: FormText = "") -> RedirectResponse:
        web.check_csrf(request, csrf)

        def queue() -> tuple[str, Slot]:
            slot = slot_of(session, slot_id)
            if slot.series_id is None:
                raise ValidationError("an explicit schedule takes no other story", "定时发布的期次不能排入其他稿件")
            if not story_id.strip().isdigit():
                raise ValidationError("choose a story", "请选择要排入的稿件")
            filled = schedule.queue_story(session, int(story_id), str(slot.series_id), day=slot.day, actor=user)
            title = session.get(Story, filled.story_id).current.title
            return f"已将《{title}》排入{filled.title_zh}（{month_day(filled.day)}）", filled

        return act(request, session, (view, day, series), slot_id, queue)

    @router.post("/calendar/slots/{slot_id}/unqueue", include_in_schema=False)
    def unqueue_page(request: Request, slot_id: int, user: PageUser, session: Db, view: FormText = "month",
                     day: Annotated[str, Form(alias="date")] = "", series: FormText = "",
                     csrf: FormText = "") -> RedirectResponse:
        web.check_csrf(request, csrf)

        def unqueue() -> tuple[str, Slot]:
            slot = schedule.unqueue(session, slot_id, actor=user)
            return f"已撤下{slot.title_zh}（{month_day(slot.day)}）的稿件，稿件仍为已通过三审", slot

        return act(request, session, (view, day, series), slot_id, unqueue)

    @router.post("/calendar/slots/{slot_id}/move", include_in_schema=False)
    def move_page(request: Request, slot_id: int, user: PageUser, session: Db, to_day: FormText = "",
                  view: FormText = "month", day: Annotated[str, Form(alias="date")] = "", series: FormText = "",
                  csrf: FormText = "") -> RedirectResponse:
        web.check_csrf(request, csrf)

        def move() -> tuple[str, Slot]:
            target = schedule.move_story(session, slot_id, parse_day(to_day, "调整日期"), actor=user)
            return f"已调整到{target.title_zh}（{month_day(target.day)}）", target

        return act(request, session, (view, day, series), slot_id, move)

    @router.post("/calendar/slots/{slot_id}/release", include_in_schema=False)
    def release_page(request: Request, slot_id: int, user: PageUser, session: Db, view: FormText = "month",
                     day: Annotated[str, Form(alias="date")] = "", series: FormText = "",
                     csrf: FormText = "") -> RedirectResponse:
        web.check_csrf(request, csrf)

        def release() -> tuple[str, Slot]:
            # The deliveries are planned in this transaction; their render tasks are sent once it
            # commits (dispatch.plan_publication registers them with after_commit).
            slot = schedule.release_now(session, web._queue(), slot_id, actor=user)
            return f"已立即发布{slot.title_zh}（{month_day(slot.day)}），各渠道发布任务已创建", slot

        return act(request, session, (view, day, series), slot_id, release)

    @router.post("/calendar/freeze", include_in_schema=False)
    def freeze_page(request: Request, user: PageUser, session: Db, reason: FormText = "",
                    view: FormText = "month", day: Annotated[str, Form(alias="date")] = "", series: FormText = "",
                    csrf: FormText = "") -> RedirectResponse:
        web.check_csrf(request, csrf)

        def freeze() -> tuple[str, None]:
            # The service checks the role (admin) and the reason; a refusal is shown as the alert.
            held = schedule.freeze(session, reason, actor=user)
            return f"已暂停全部发布（{reason.strip()}），{held} 个待发布任务已暂停", None

        return act(request, session, (view, day, series), None, freeze)

    @router.post("/calendar/resume", include_in_schema=False)
    def resume_page(request: Request, user: PageUser, session: Db, view: FormText = "month",
                    day: Annotated[str, Form(alias="date")] = "", series: FormText = "",
                    csrf: FormText = "") -> RedirectResponse:
        web.check_csrf(request, csrf)

        def resume() -> tuple[str, None]:
            # The held deliveries' render/publish tasks are sent once this transaction commits.
            resumed = schedule.resume(session, web._queue(), actor=user)
            return f"已恢复发布，{resumed} 个暂停的发布任务已继续发送", None

        return act(request, session, (view, day, series), None, resume)

    @router.get("/api/calendar", tags=["schedule"])
    def api_calendar(
            user: Annotated[User, Depends(web.api_user)], session: Db,
            first: Annotated[date | None, Query(alias="from", description="起始日期 YYYY-MM-DD（默认本月1日）")] = None,
            last: Annotated[date | None, Query(alias="to", description="结束日期 YYYY-MM-DD（默认本月末）")] = None,
            series: Annotated[str, Query(description="栏目编号或名称（默认全部栏目及定时发布）")] = "",
    ) -> list[dict[str, Any]]:
        """排期日历：起止日期内的每个期次（状态、稿件、各渠道发布状态、缺稿标记）。"""
        settings = get_settings()
        today = utcnow().astimezone(schedule.ZONE).date()
        first = first or today.replace(day=1)
        last = last or (first.replace(day=1) + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        if last < first:
            raise ValidationError("`to` is before `from`", "结束日期早于起始日期")
        if (last - first).days >= API_MAX_DAYS:
            raise ValidationError(f"at most {API_MAX_DAYS} days at once", f"一次最多查询 {API_MAX_DAYS} 天")
        series_id = schedule.find_series(session, series.strip()).id if series.strip() else None
        return [entry_json(e) for e in schedule.calendar(session, first, last, series_id=series_id,
                                                         lead_workdays=settings.gap_lead_workdays)]

    def export(session: Session, series: str, extension: str, media_type: str) -> Response:
        # Lazily: the web app starts without the spreadsheet writer (openpyxl).
        from services import exports

        if not series.strip():
            raise ValidationError("choose a series to export", "请先选择要导出的栏目")
        chosen = schedule.find_series(session, series.strip())
        table = exports.schedule_table(session, str(chosen.id))
        body = exports.to_csv(table) if extension == "csv" else exports.to_xlsx(table)
        disposition = attachment(f"{chosen.name}排期表.{extension}", f"schedule-{chosen.id}.{extension}")
        return Response(body, media_type=media_type, headers={"Content-Disposition": disposition})

    @router.get("/calendar/export.csv", include_in_schema=False)
    def export_csv(user: PageUser, session: Db, series: str = "") -> Response:
        return export(session, series, "csv", "text/csv; charset=utf-8")

    @router.get("/calendar/export.xlsx", include_in_schema=False)
    def export_xlsx(user: PageUser, session: Db, series: str = "") -> Response:
        return export(session, series, "xlsx", XLSX)

    return router
