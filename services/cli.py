"""The `fanout` command: thin entry points that parse, call one service function, map errors.

Every failure exits non-zero with one English line (`error: …`) on stderr. Commands that
change state commit one unit of work; tasks are sent only after it commits.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from services.config import get_settings
from services.errors import FanoutError


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class FanoutGroup(click.Group):
    """Maps the service layer's typed errors to one line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FanoutError as exc:
            _fail(exc.message, exc.exit_code)
        except click.exceptions.Exit:  # --help and ctx.exit(): click's own way out (a RuntimeError)
            raise
        except (TimeoutError, RuntimeError) as exc:
            _fail(str(exc))


def _ready_db() -> None:
    from services.migrations import upgrade

    settings = get_settings()
    settings.ensure_dirs()
    upgrade(settings.db_url)


def _storage():  # noqa: ANN202
    from services.storage import open_storage

    return open_storage(get_settings())


def _queue():  # noqa: ANN202
    import worker

    return worker.task_queue()


@click.group(cls=FanoutGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Fanout: author once, review 三审三校, fan out to every channel."""


# --------------------------------------------------------------------------- db & processes


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every Alembic migration (safe to run again)."""
    _ready_db()
    click.echo(f"database is at the latest schema: {get_settings().db_url.split('@')[-1]}")


@main.command()
@click.option("--host", default=None)
@click.option("--port", type=int, default=None)
def web(host: str | None, port: int | None) -> None:
    """Run the web app (editor UI, API, /site/)."""
    import uvicorn

    settings = get_settings()
    _ready_db()
    uvicorn.run("services.web.app:create_app", factory=True, host=host or settings.web_host,
                port=port or settings.web_port, log_level="info", proxy_headers=True)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("-Q", "--queues", default="media,publish", show_default=True)
@click.option("--pool", default=None, help="prefork (media) or threads (publish); default by queue")
@click.option("-c", "--concurrency", type=int, default=None)
@click.option("-n", "--name", default=None)
@click.pass_context
def worker(ctx: click.Context, queues: str, pool: str | None, concurrency: int | None, name: str | None) -> None:
    """Run a Celery worker on QUEUES (media, publish)."""
    import worker as worker_module

    _ready_db()
    only_publish = queues.split(",") == ["publish"]
    pool = pool or ("threads" if only_publish else "prefork")
    concurrency = concurrency or (8 if pool == "threads" else max(1, (os.cpu_count() or 2) // 2))
    argv = ["worker", "-Q", queues, "--pool", pool, "--concurrency", str(concurrency), "--loglevel", "INFO",
            "-n", name or f"{queues.replace(',', '+')}.{os.getpid()}@%h"]
    if pool == "prefork":  # recycle children: guards against ffmpeg/Pillow memory growth
        argv += ["--max-tasks-per-child", "50"]
    worker_module.app.worker_main(argv=[*argv, *ctx.args])


@main.command()
@click.option("--schedule", "schedule_file", default=None,
              help="beat's state file (default FANOUT_HOME/run/celerybeat-schedule)")
def beat(schedule_file: str | None) -> None:
    """Run Celery beat (the minute tick; FANOUT_TICK_SECONDS changes the period)."""
    import worker as worker_module

    _ready_db()
    extra = ["--schedule", schedule_file] if schedule_file else []
    worker_module.app.start(argv=["beat", "--loglevel", "INFO", *extra])


@main.command()
@click.option("--port", type=int, default=5555, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True)
def flower(port: int, address: str) -> None:
    """Run Flower, Celery's worker monitor (ops detail beside the dashboard)."""
    import worker as worker_module

    worker_module.app.start(argv=["flower", f"--port={port}", f"--address={address}"])


@main.command()
@click.option("--demo", is_flag=True, help="Load the demo data first (once).")
def up(demo: bool) -> None:
    """Start web, workers and beat on this machine; Ctrl-C stops them all."""
    from services import processes

    settings = get_settings()
    _ready_db()
    if demo:
        from services.demo import load_demo, release_first_day

        info = load_demo(settings, _storage())
        click.echo(f"demo data: {info['stories']} stories in {', '.join(info['series'])}; "
                   f"accounts: {', '.join(info['accounts'])}")
    children = [processes.start("web", ["web"], settings), *processes.start_workers(settings),
                processes.start("beat", ["beat"], settings)]
    if demo:
        processes.wait_for_queues({"media", "publish"}, timeout=60, children=children)
        released = release_first_day(_queue())  # released by hand, or by beat's first tick meanwhile
        click.echo(f"demo: day 1 released ({len(released)} stories); beat releases one issue a day")
    url = f"http://{settings.web_host}:{settings.web_port}"
    click.echo(f"""
Fanout is running (FANOUT_HOME={settings.resolved_home})
  editor UI   {url}/        API docs {url}/docs   health {url}/healthz
  website     {url}/site/   feeds {url}/site/feed.xml  {url}/site/atom.xml
  logs        {settings.run_dir}/*.log
""")
    password_file = settings.resolved_home / "admin-password.txt"
    if password_file.exists():
        click.echo(f"  log in as   admin / {password_file.read_text().strip()}   (from {password_file})")
    users_file = settings.resolved_home / "demo-users.txt"
    if users_file.exists():
        click.echo(f"  demo desk   editor and reviewers chushen/fushen/zhongshen: passwords in {users_file}")
    click.echo("Press Ctrl-C to stop.")
    stopping = False

    def _stop(*_args: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stopping:
            dead = [c for c in children if c.process.poll() is not None]
            if dead:
                click.echo(f"error: {dead[0].name} exited ({dead[0].process.returncode}); see {dead[0].log_path}",
                           err=True)
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    click.echo("stopping web, workers and beat …")
    processes.stop(children)
    click.echo("stopped.")


# --------------------------------------------------------------------------- users


@main.group()
def user() -> None:
    """Users and roles."""


@user.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="editor, reviewer, ops, admin")
@click.option("--level", "levels", multiple=True, type=int, help="review level 1/2/3 (reviewers)")
@click.option("--unit", default="", help="责任单位")
def user_add(name: str, roles: tuple[str, ...], levels: tuple[int, ...], unit: str) -> None:
    """Create a user and print a generated password once."""
    from services.db import session_scope
    from services.users import create_user

    _ready_db()
    with session_scope() as session:
        created, password = create_user(session, name, roles=list(roles), levels=list(levels), unit=unit)
        click.echo(f"user {created.username} (id {created.id}) roles={','.join(created.role_names)}")
    click.echo(f"password: {password}")


# --------------------------------------------------------------------------- stories


@main.group()
def story() -> None:
    """Author stories."""


@story.command("add")
@click.option("--title", required=True)
@click.option("--body-file", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--summary", default="")
@click.option("--cover", type=click.Path(path_type=Path), default=None)
@click.option("--image", "images", multiple=True, type=click.Path(path_type=Path))
@click.option("--video", type=click.Path(path_type=Path), default=None)
@click.option("--alt", "alts", multiple=True, help="alt text for each --image, in order")
@click.option("--theme", default="")
@click.option("--unit", default="")
@click.option("--label", default="", help="a label by hand (a campaign with a template makes it instead)")
@click.option("--campaign", default=None, help="campaign name or id: its label template makes the label")
@click.option("--project", default="", help="民生实事项目, a label template variable")
@click.option("--tag", "tags", multiple=True)
def story_add(title: str, body_file: Path, summary: str, cover: Path | None, images: tuple[Path, ...],
              video: Path | None, alts: tuple[str, ...], theme: str, unit: str, label: str, campaign: str | None,
              project: str, tags: tuple[str, ...]) -> None:
    """Add a story; prints its id."""
    from services.db import session_scope
    from services.stories import MediaInput, StoryInput, create_story

    try:
        body = body_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        _fail(f"body file not found: {body_file}")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"body file is not readable UTF-8 text: {body_file}: {exc.__class__.__name__}")
    media = [MediaInput(path=cover, role="cover")] if cover else []
    media += [MediaInput(path=p, role="image", alt=alts[i] if i < len(alts) else "") for i, p in enumerate(images)]
    if video:
        media.append(MediaInput(path=video, role="video"))
    _ready_db()
    with session_scope() as session:
        created = create_story(session, _storage(), StoryInput(
            title=title, body_markdown=body, summary=summary, theme=theme, unit=unit, label=label,
            campaign=campaign, project=project, tags=list(tags), media=media))
        story_id = created.id
    click.echo(story_id)


@story.command("list")
@click.option("--json", "as_json", is_flag=True)
def story_list(as_json: bool) -> None:
    """List stories, newest first."""
    from services.db import session_scope
    from services.stories import list_stories

    _ready_db()
    with session_scope() as session:
        rows = [{"id": s.id, "version": s.current.number, "status": s.status, "title": s.current.title}
                for s in list_stories(session)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for row in rows:
            click.echo(f"{row['id']:>5}  v{row['version']:<3} {row['status']:<10} {row['title']}")


TEMPLATE_SUFFIXES = {".xlsx": "xlsx", ".csv": "csv", ".yaml": "yaml", ".yml": "yaml", ".zip": "zip"}


def _print_row_errors(errors) -> None:  # noqa: ANN001 - services.bulk.RowError list
    """The manifest's problems as a table on stderr: row, column, what is wrong (English)."""
    from services.exports import _display_width

    table = [("row", "column", "problem")] + [(str(e.row) if e.row else "-", e.column or "-", e.message)
                                              for e in errors]
    widths = [max(_display_width(row[i]) for row in table) for i in (0, 1)]
    for row in table:
        cells = [row[i] + " " * (widths[i] - _display_width(row[i])) for i in (0, 1)]
        click.echo(f"{cells[0]}  {cells[1]}  {row[2]}", err=True)


@story.command("import")
@click.argument("manifest", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--as", "as_user", default=None, help="the editor who owns the imported drafts")
@click.option("--template", "template_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write a template manifest instead (.xlsx, .csv, .yaml, or .zip with its sample images)")
def story_import(manifest: Path | None, as_user: str | None, template_out: Path | None) -> None:
    """Import stories from MANIFEST (.xlsx, .csv, .yaml, .json, or a .zip with the media): all rows or none.

    Prints the new story ids; on errors, a table of every bad row and column, and nothing is imported."""
    from media.fsutil import write_bytes_atomic
    from services import bulk
    from services.db import session_scope

    if template_out is not None:
        if manifest is not None:
            _fail("give a MANIFEST to import or --template FILE, not both")
        fmt = TEMPLATE_SUFFIXES.get(template_out.suffix.lower())
        if fmt is None:
            _fail(f"--template writes .xlsx, .csv, .yaml or .zip, not {template_out.name!r}")
        write_bytes_atomic(template_out, bulk.template_bytes(fmt))
        click.echo(f"template: {template_out}")
        return
    if manifest is None:
        _fail("give a MANIFEST to import (or --template FILE to write a template)")
    if not manifest.is_file():
        _fail(f"manifest not found: {manifest}")
    _ready_db()
    try:
        with session_scope() as session:
            actor = _as_user(session, as_user) if as_user else None
            result = bulk.import_manifest(session, _storage(), manifest, actor=actor, work_dir=get_settings().cache_dir)
    except bulk.ManifestError as exc:
        _print_row_errors(exc.errors)
        raise
    for story_id in result.story_ids:
        click.echo(story_id)
    ignored = f" (ignored the export's columns: {', '.join(result.ignored_columns)})" if result.ignored_columns else ""
    count = len(result.story_ids)
    click.echo(f"imported {count} {'story' if count == 1 else 'stories'} from {result.manifest} as drafts{ignored}",
               err=True)


@story.command("export")
@click.option("--from", "start_text", default=None, help="first day YYYY-MM-DD: stories written, edited or published")
@click.option("--to", "end_text", default=None, help="last day YYYY-MM-DD")
@click.option("--story", "story_ids", multiple=True, type=int, help="only this story (repeatable)")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv", "yaml"]), default="xlsx", show_default=True)
@click.option("--media", "with_media", is_flag=True, help="write a zip of the manifest and its media (imports back)")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def story_export(start_text: str | None, end_text: str | None, story_ids: tuple[int, ...], fmt: str,
                 with_media: bool, out: Path) -> None:
    """Export stories (current version, review state) and their delivery records."""
    from media.fsutil import write_bytes_atomic
    from services import bulk
    from services.db import session_scope

    start, end = _date(start_text), _date(end_text)
    _ready_db()
    with session_scope() as session:
        export = bulk.export_stories(session, start=start, end=end, story_ids=list(story_ids) or None)
    if with_media:
        bulk.write_zip(export, fmt, _storage(), out)
    else:
        write_bytes_atomic(out, bulk.serialise(export, fmt))
    click.echo(f"wrote {len(export.stories)} stories and {len(export.deliveries)} delivery records to {out}")


# --------------------------------------------------------------------------- review (三审三校)


def _as_user(session, username: str):  # noqa: ANN001, ANN202
    from services.users import find_user

    return find_user(session, username)


def _print_findings(findings) -> None:  # noqa: ANN001
    for f in findings:
        mark = "BLOCK" if f.severity == "block" else "warn "
        click.echo(f"  [{mark}] {f.key}: {f.message}")


@main.command()
@click.argument("story_id", type=int)
@click.option("--as", "as_user", required=True, help="the submitting editor's username")
def submit(story_id: int, as_user: str) -> None:
    """Submit a story's current version for 初审; prints the proof findings."""
    from services import review
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        findings = review.submit(session, get_settings(), story_id, _as_user(session, as_user), queue=_queue())
        version = review.current_version(session, story_id)[1].number
    click.echo(f"story {story_id} v{version} submitted for 初审; {len(findings)} proof findings")
    _print_findings(findings)


@main.command()
@click.argument("story_id", type=int)
@click.option("--as", "as_user", required=True)
def withdraw(story_id: int, as_user: str) -> None:
    """Withdraw a submission (the author, before the first sign-off)."""
    from services import review
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        review.withdraw(session, story_id, _as_user(session, as_user))
    click.echo(f"story {story_id} withdrawn to draft")


@main.command("review")
@click.argument("story_id", type=int)
@click.option("--as", "as_user", required=True, help="the reviewer's username")
@click.option("--approve", "decision", flag_value="approve")
@click.option("--reject", "decision", flag_value="reject")
@click.option("--comment", default="", help="the opinion (required to reject)")
@click.option("--level", type=int, default=None, help="the level you mean to sign (refused if it is not the pending one)")
@click.option("--ack", "acks", multiple=True, help="acknowledge a warning by key; 'all' for every warning shown")
def review_cmd(story_id: int, as_user: str, decision: str | None, comment: str, level: int | None,
               acks: tuple[str, ...]) -> None:
    """Sign the level a story waits for: --approve or --reject."""
    from services import review
    from services.db import session_scope

    if decision is None:
        _fail("say --approve or --reject")
    _ready_db()
    acknowledge = "all" if "all" in acks else list(acks)
    with session_scope() as session:
        signature = review.sign(session, get_settings(), _storage(), story_id, _as_user(session, as_user),
                                approve=decision == "approve", opinion=comment, acknowledge=acknowledge, level=level)
        state = review.current_version(session, story_id)[1].review_state
        click.echo(f"story {story_id}: {review.LEVEL_ZH[signature.level]} {decision}d by {as_user}; "
                   f"now {state} ({review.STATE_ZH[state]})")


@main.command()
@click.argument("story_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def status(story_id: int, as_json: bool) -> None:
    """Versions, signatures, proof findings and questions of a story."""
    from services import review
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        data = review.status(session, story_id)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    waiting = f", waiting for {data['waiting_for']}" if data["waiting_for"] else ""
    click.echo(f"story {data['story_id']} v{data['version']}: {data['review_state']} ({data['review_state_zh']}){waiting}")
    for v in data["versions"]:
        click.echo(f"  v{v['number']:<3} {v['review_state']:<11} {v['title']}")
    click.echo("signatures:")
    for sig in data["signatures"]:
        click.echo(f"  round {sig['round']} {sig['level_zh']} {sig['decision']:<7} {sig['reviewer']:<12} {sig['at'][:19]}"
                   + (f"  意见：{sig['opinion']}" if sig["opinion"] else ""))
    click.echo("findings:")
    from services.proofing import Finding

    _print_findings([Finding.from_json(f) for f in data["findings"]])
    for q in data["questions"]:
        click.echo(f"question #{q['id']} from level {q['from_level']} by {q['asked_by']}: {q['question']}"
                   + (f" — answered by {q['answered_by']}: {q['answer']}" if q["answer"] else " (open)"))


@main.command()
@click.argument("story_id", type=int)
@click.option("--as", "as_user", required=True)
@click.option("--question", required=True)
def ask(story_id: int, as_user: str, question: str) -> None:
    """拿不准的问题及时请示: ask the next review level a question."""
    from services import review
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        asked = review.escalate(session, story_id, _as_user(session, as_user), question)
        click.echo(f"question #{asked.id} sent to {review.LEVEL_ZH[asked.from_level + 1]}")


@main.command()
@click.argument("question_id", type=int)
@click.option("--as", "as_user", required=True)
@click.option("--text", required=True)
def answer(question_id: int, as_user: str, text: str) -> None:
    """Answer a review question from the level below."""
    from services import review
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        review.answer(session, question_id, _as_user(session, as_user), text)
    click.echo(f"question #{question_id} answered")


@main.command()
@click.argument("delivery_id", type=int)
@click.option("--as", "as_user", required=True)
def reapprove(delivery_id: int, as_user: str) -> None:
    """终审 re-approves one held delivery whose channel rendering changed since approval."""
    from services import review
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        review.reapprove_delivery(session, get_settings(), _storage(), _queue(), delivery_id,
                                  _as_user(session, as_user))
    click.echo(f"delivery {delivery_id} re-approved and sent on")


# --------------------------------------------------------------------------- campaigns & schedule


def _date(value: str | None):  # noqa: ANN202
    from datetime import date

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"not a date (YYYY-MM-DD): {value!r}")


@main.group()
def campaign() -> None:
    """Publicity campaigns."""


@campaign.command("add")
@click.argument("name")
@click.option("--label", "label", default="", help="label template, e.g. 黄山市黄山区30项民生实事之{project}民生实事")
@click.option("--from", "starts", default=None)
@click.option("--to", "ends", default=None)
@click.option("--theme", "themes", multiple=True)
@click.option("--phase", "phases", multiple=True, help="NAME:FROM:TO, e.g. 准备期:2026-03-01:2026-03-31")
@click.option("--focus-month", "focus_months", multiple=True, type=int, help="集中宣传月 (1-12)")
def campaign_add(name: str, label: str, starts: str | None, ends: str | None, themes: tuple[str, ...],
                 phases: tuple[str, ...], focus_months: tuple[int, ...]) -> None:
    """Add a campaign."""
    from services import schedule
    from services.db import session_scope

    parsed = []
    for phase in phases:
        parts = phase.split(":")
        if len(parts) != 3:
            _fail(f"--phase must be NAME:FROM:TO, got {phase!r}")
        parsed.append({"name": parts[0], "from": _date(parts[1]).isoformat(), "to": _date(parts[2]).isoformat()})
    _ready_db()
    with session_scope() as session:
        created = schedule.add_campaign(session, name, label_template=label, starts_on=_date(starts),
                                        ends_on=_date(ends), themes=list(themes), phases=parsed,
                                        focus_months=list(focus_months))
        click.echo(f"campaign {created.id}: {created.name}")


@campaign.command("list")
@click.option("--json", "as_json", is_flag=True)
def campaign_list(as_json: bool) -> None:
    """List campaigns with their label templates, phases and series."""
    from sqlalchemy import select

    from services.db import session_scope
    from services.models import Campaign, Series

    _ready_db()
    with session_scope() as session:
        rows = [{"id": c.id, "name": c.name, "label_template": c.label_template,
                 "from": c.starts_on.isoformat() if c.starts_on else None,
                 "to": c.ends_on.isoformat() if c.ends_on else None, "themes": c.themes, "phases": c.phases,
                 "focus_months": c.focus_months,
                 "series": list(session.scalars(select(Series.name).where(Series.campaign_id == c.id)))}
                for c in session.scalars(select(Campaign).order_by(Campaign.id))]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        click.echo(f"{row['id']:>3}  {row['name']}  {row['label_template'] or '-'}  series: {', '.join(row['series'])}")


@main.group()
def series() -> None:
    """Series (栏目) and their release schedule."""


@series.command("add")
@click.argument("name")
@click.option("--campaign", "campaign_name", required=True)
@click.option("--kind", required=True, help="图文, 短视频, 新闻发布会, 访谈, other")
@click.option("--cadence", "cadence_name", type=click.Choice(["daily", "workdays", "dates"]), required=True)
@click.option("--dates", default="", help="D,D,… for --cadence dates")
@click.option("--start", required=True)
@click.option("--end", default=None)
@click.option("--count", type=int, default=None, help="number of issues")
@click.option("--time", "release_time", required=True, help="HH:MM in Asia/Shanghai")
@click.option("--holidays", type=click.Choice(["publish", "skip", "workdays"]), default="publish", show_default=True)
@click.option("--account", "accounts", multiple=True, help="account id or channel/name (default: all enabled)")
def series_add(name: str, campaign_name: str, kind: str, cadence_name: str, dates: str, start: str, end: str | None,
               count: int | None, release_time: str, holidays: str, accounts: tuple[str, ...]) -> None:
    """Add a series; its release days are laid out as slots."""
    from services import cadence, schedule
    from services.db import session_scope

    _ready_db()
    listed = [_date(d.strip()) for d in dates.split(",") if d.strip()]
    with session_scope() as session:
        created = schedule.add_series(session, get_settings(), name, campaign=campaign_name, kind=kind,
                                      cadence_name=cadence_name, start=_date(start), release_time=release_time,
                                      holidays=holidays, dates=listed, end=_date(end), count=count,
                                      accounts=list(accounts))
        slots = schedule.slots_of(session, created.id)
        click.echo(f"series {created.id}: {created.name} — {cadence.describe_zh(schedule.rule_of(created))}; "
                   f"{len(slots)} slots, first {slots[0].day.isoformat() if slots else '-'}")


@series.command("list")
@click.option("--json", "as_json", is_flag=True)
def series_list(as_json: bool) -> None:
    """List series with their slots' states."""
    from services import schedule
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        rows = []
        for item in schedule.list_series(session):
            slots = schedule.slots_of(session, item.id)
            states: dict[str, int] = {}
            for slot in slots:
                states[slot.state] = states.get(slot.state, 0) + 1
            rows.append({"id": item.id, "name": item.name, "campaign": item.campaign.name, "kind": item.kind,
                         "cadence": item.cadence, "holidays": item.holidays, "time": item.release_time,
                         "start": item.starts_on.isoformat(), "accounts": item.account_ids, "slots": states})
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        click.echo(f"{row['id']:>3}  {row['name']:<20} {row['kind']:<6} {row['cadence']:<9} {row['time']}  {row['slots']}")


@main.command("queue")
@click.argument("story_id", type=int)
@click.option("--series", "series_ref", required=True)
@click.option("--date", "day", default=None, help="a given slot day instead of the next open one")
def queue_cmd(story_id: int, series_ref: str, day: str | None) -> None:
    """Queue an approved story into the next open slot of a series."""
    from zoneinfo import ZoneInfo

    from services import schedule
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        slot = schedule.queue_story(session, story_id, series_ref, day=_date(day))
        local = slot.release_at.astimezone(ZoneInfo("Asia/Shanghai"))
        click.echo(f"story {story_id} queued: {slot.series.name} 第{slot.issue_number}期 "
                   f"{local.date().isoformat()} {local.strftime('%H:%M')}")


@series.command("show")
@click.argument("series_ref")
@click.option("--json", "as_json", is_flag=True)
def series_show(series_ref: str, as_json: bool) -> None:
    """A series' slots: day, 第N期, state and story."""
    from services import schedule
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        rows = [schedule.slot_view(slot) for slot in
                schedule.slots_of(session, schedule.find_series(session, series_ref).id)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        click.echo(f"{row['id']:>5}  {row['day']} 第{row['issue']}期 {row['state']:<9} story {row['story_id'] or '-'}"
                   f"{'  ' + row['note'] if row['note'] else ''}")


@series.command("reorder")
@click.argument("series_ref")
@click.argument("story_ids", nargs=-1, type=int, required=True)
def series_reorder(series_ref: str, story_ids: tuple[int, ...]) -> None:
    """Put the queued, not yet due stories into the series' filled slots in this order."""
    from services import schedule
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        slots = schedule.reorder(session, series_ref, list(story_ids))
        lines = [f"{slot.day.isoformat()} 第{slot.issue_number}期 story {slot.story_id}" for slot in slots]
    click.echo("\n".join(lines))


@main.group()
def slot() -> None:
    """One slot (期次): move, swap, unqueue, release by hand."""


def _slot_line(slot) -> str:  # noqa: ANN001
    from zoneinfo import ZoneInfo

    local = slot.release_at.astimezone(ZoneInfo("Asia/Shanghai"))
    return f"slot {slot.id}: {slot.title_zh} {local:%Y-%m-%d %H:%M} {slot.state} story {slot.story_id or '-'}"


@slot.command("move")
@click.argument("slot_id", type=int)
@click.option("--to", "to_day", required=True, help="the series day to move the story to (swaps if filled)")
def slot_move(slot_id: int, to_day: str) -> None:
    """Move a queued story to another day of its series."""
    from services import schedule
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        click.echo(_slot_line(schedule.move_story(session, slot_id, _date(to_day))))


@slot.command("swap")
@click.argument("first", type=int)
@click.argument("second", type=int)
def slot_swap(first: int, second: int) -> None:
    """Exchange the stories of two filled slots of one series."""
    from services import schedule
    from services.db import session_scope
    from services.models import Slot

    _ready_db()
    with session_scope() as session:
        schedule.swap_slots(session, first, second)
        session.flush()
        click.echo("\n".join(_slot_line(session.get(Slot, i)) for i in (first, second)))


@slot.command("unqueue")
@click.argument("slot_id", type=int)
def slot_unqueue(slot_id: int) -> None:
    """Take a story out of its slot (an explicit schedule is cancelled)."""
    from services import schedule
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        click.echo(_slot_line(schedule.unqueue(session, slot_id)))


@slot.command("release")
@click.argument("slot_id", type=int)
def slot_release(slot_id: int) -> None:
    """Release a filled or missed slot now: a person's decision."""
    from services import schedule
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        click.echo(_slot_line(schedule.release_now(session, _queue(), slot_id)))


@main.command("schedule")
@click.argument("story_id", type=int)
@click.option("--at", "at_text", required=True, help="ISO 8601 time; without a zone it is Asia/Shanghai")
@click.option("--account", "accounts", multiple=True, required=True, help="account id or channel/name")
def schedule_cmd(story_id: int, at_text: str, accounts: tuple[str, ...]) -> None:
    """Publish an approved story at a given time on given accounts (besides the series)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from services import schedule
    from services.db import session_scope

    try:
        at = datetime.fromisoformat(at_text)
    except ValueError:
        _fail(f"--at is not an ISO 8601 time: {at_text!r}")
    at = at if at.tzinfo else at.replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    _ready_db()
    with session_scope() as session:
        click.echo(_slot_line(schedule.schedule_story(session, story_id, at, list(accounts))))


@main.command("gaps")
@click.option("--lead", type=int, default=None, help="working days ahead (default FANOUT_GAP_LEAD_WORKDAYS)")
@click.option("--json", "as_json", is_flag=True)
def gaps_cmd(lead: int | None, as_json: bool) -> None:
    """Open slots editors must fill now: due within the lead time."""
    from services import schedule
    from services.db import session_scope

    _ready_db()
    lead = get_settings().gap_lead_workdays if lead is None else lead
    with session_scope() as session:
        rows = [schedule.slot_view(slot) for slot in schedule.gaps(session, lead_workdays=lead)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        click.echo(f"gap: {row['series']} 第{row['issue']}期 {row['release_at'][:16].replace('T', ' ')}")
    click.echo(f"{len(rows)} open slots within {lead} working days")


@main.command("calendar")
@click.option("--series", "series_ref", required=True, help="series id or name")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def calendar_cmd(series_ref: str, fmt: str, output: Path) -> None:
    """Export a series' plan as a 附件1/附件3-style table (序号, 场次/单位, 时间, 备注)."""
    import tempfile

    from services import exports
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        table = exports.schedule_table(session, series_ref)
    data = exports.to_xlsx(table) if fmt == "xlsx" else exports.to_csv(table)
    target = output.expanduser().absolute()
    try:  # atomically: a reader never sees half a file, a failure leaves the old one
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror}")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temp, 0o666 & ~mask)  # mkstemp makes 0600; give the file the usual mode
        os.replace(temp, target)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        _fail(f"cannot write {output}: {exc.strerror}")
    click.echo(f"wrote {len(table.rows)} rows to {output}")


@main.command("tick")
@click.option("--now", default=None, help="ISO 8601 instant to tick at (default: now)")
def tick_cmd(now: str | None) -> None:
    """Release due slots now (what beat does every minute)."""
    from datetime import datetime, timezone

    from services import schedule
    from services.db import session_scope

    _ready_db()
    at = None
    if now:
        try:
            at = datetime.fromisoformat(now)
        except ValueError:
            _fail(f"--now is not an ISO 8601 instant: {now!r}")
        at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    with session_scope() as session:
        result = schedule.tick(session, get_settings(), _queue(), now=at)
    if result.frozen:
        click.echo("releases are frozen: nothing released")
        return
    click.echo(f"released {len(result.released)} slots ({len(result.late)} late), {len(result.missed)} missed")


@main.command()
@click.option("--reason", required=True)
@click.option("--as", "as_user", required=True, help="an admin")
def freeze(reason: str, as_user: str) -> None:
    """Hold every release and queued delivery (e.g. a day of national mourning)."""
    from services import schedule
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        held = schedule.freeze(session, reason, _as_user(session, as_user))
    click.echo(f"frozen: {held} queued deliveries held")


@main.command()
@click.option("--as", "as_user", required=True, help="an admin")
def resume(as_user: str) -> None:
    """Lift a freeze: held deliveries go on and due slots release on the next tick."""
    from services import schedule
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        resumed = schedule.resume(session, _queue(), _as_user(session, as_user))
    click.echo(f"resumed: {resumed} deliveries sent on")


# --------------------------------------------------------------------------- accounts


@main.group()
def account() -> None:
    """Channel accounts."""


@account.command("add")
@click.argument("channel")
@click.argument("name")
@click.option("--mode", type=click.Choice(["live", "outbox"]), default="live", show_default=True)
@click.option("--api-base", default=None)
@click.option("--credentials-file", type=click.Path(path_type=Path), default=None)
@click.option("--set", "sets", multiple=True, help="account setting key=value")
def account_add(channel: str, name: str, mode: str, api_base: str | None, credentials_file: Path | None,
                sets: tuple[str, ...]) -> None:
    """Add an account of CHANNEL (website, rss, …)."""
    from services.accounts import add_account, read_credentials_file
    from services.db import session_scope

    settings_map: dict[str, str] = {}
    for item in sets:
        if "=" not in item:
            _fail(f"--set wants key=value, got {item!r}")
        key, value = item.split("=", 1)
        settings_map[key.strip()] = value
    credentials = read_credentials_file(credentials_file) if credentials_file else None
    _ready_db()
    with session_scope() as session:
        created = add_account(session, get_settings(), channel, name, mode=mode, api_base=api_base,
                              credentials=credentials, account_settings=settings_map)
        click.echo(f"account {created.id}: {created.channel}/{created.name} ({created.mode})")


@account.command("check")
def account_check() -> None:
    """Run every live account's upkeep now (token refresh/renewal) and print the warnings."""
    from services.accounts import maintain_accounts

    _ready_db()
    report = maintain_accounts(get_settings())
    for where, warnings in report.items():
        for warning in warnings:
            click.echo(f"{where}: {warning}")
    if not report:
        click.echo("every live account is fine")


@account.command("list")
@click.option("--json", "as_json", is_flag=True)
def account_list(as_json: bool) -> None:
    """List channel accounts (credentials are never shown)."""
    from services.accounts import list_accounts, public_view
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        rows = [public_view(a) for a in list_accounts(session)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        state = "enabled" if row["enabled"] else "disabled"
        click.echo(f"{row['id']:>4}  {row['channel']:<16} {row['name']:<24} {row['mode']:<7} {state}")


# --------------------------------------------------------------------------- publish


def _print_deliveries(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        where = row["remote_url"] or row["last_error"] or ""
        click.echo(f"{row['id']:>5}  story {row['story_id']} v{row['version']}  {row['channel']}/{row['account']:<20}"
                   f" {row['state']:<11} {where}")


@main.command()
@click.argument("story_id", type=int)
@click.option("--wait", is_flag=True, help="Block until every delivery is final and print them.")
@click.option("--timeout", type=float, default=900.0, show_default=True)
def publish(story_id: int, wait: bool, timeout: float) -> None:
    """Plan one delivery per enabled account for STORY_ID and enqueue them."""
    from services import dispatch
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        result = dispatch.plan_publication(session, _queue(), story_id)
    click.echo(f"story {story_id} v{result.version}: {len(result.created)} new deliveries, "
               f"{len(result.existing)} already planned")
    if not wait:
        return
    rows = _wait_with_workers([story_id], timeout)
    _print_deliveries(rows)
    if any(r["state"] != "published" for r in rows):
        _fail("not every delivery was published")


def _wait_with_workers(story_ids: list[int], timeout: float) -> list[dict[str, Any]]:
    """Wait for final states, starting embedded workers for the while if none is running."""
    from services import dispatch, processes
    from services.db import session_scope
    from services.ops import queues_served

    settings = get_settings()
    with session_scope() as session:
        missing = {"media", "publish"} - queues_served(session)
    children = processes.start_workers(settings, tag="embedded") if missing else []
    try:
        if children:
            click.echo("no worker is running: started embedded workers for the while", err=True)
            processes.wait_for_queues({"media", "publish"}, timeout=90, children=children)
        queue = _queue()
        return dispatch.wait_until_final(story_ids, timeout=timeout,
                                         sweeper=lambda: dispatch.sweep(settings, queue))
    finally:
        processes.stop(children)


@main.command()
@click.option("--story", "story_id", type=int, default=None)
@click.option("--json", "as_json", is_flag=True)
def deliveries(story_id: int | None, as_json: bool) -> None:
    """List deliveries and their states."""
    from services import dispatch
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        rows = [dispatch.delivery_view(d) for d in dispatch.deliveries_for(session, story_id=story_id)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        _print_deliveries(rows)


@main.command()
@click.argument("story_id", type=int)
@click.option("--reason", required=True, help="why it comes down (audited)")
@click.option("--as", "as_user", required=True, help="who retracts it (editor, ops or admin)")
@click.option("--json", "as_json", is_flag=True)
def retract(story_id: int, reason: str, as_user: str, as_json: bool) -> None:
    """Take STORY_ID down from every channel whose API allows it; list what a person must remove."""
    import dataclasses

    from services import retraction
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        plan = retraction.retract_story(session, _queue(), story_id, reason, _as_user(session, as_user))
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(plan), ensure_ascii=False, indent=2))
        return
    click.echo(f"story {story_id} retracted: {len(plan.by_api)} deletions sent to platforms, "
               f"{len(plan.cancelled)} deliveries cancelled before sending")
    for title, rows in (("remove by hand", plan.by_hand), ("check by hand (may have been posted)", plan.to_check)):
        if rows:
            click.echo(f"{title}:")
            for row in rows:
                click.echo(f"  #{row['id']} {row['channel']}/{row['account']} {row['url'] or row['state']}")


@main.group()
def outbox() -> None:
    """Packages waiting for a person to post them by hand (outbox accounts, 视频号)."""


@outbox.command("list")
@click.option("--json", "as_json", is_flag=True)
def outbox_list(as_json: bool) -> None:
    """Deliveries waiting in the outbox, oldest first, with their package folder."""
    from services import dispatch
    from services import outbox as box
    from services.db import session_scope

    _ready_db()
    settings = get_settings()
    with session_scope() as session:
        rows = [{**dispatch.delivery_view(d), "package": str(box.package_dir(settings, d.id))}
                for d in box.waiting(session)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        click.echo(f"{row['id']:>5}  story {row['story_id']} v{row['version']}  {row['channel']}/{row['account']:<20}"
                   f" {row['package']}")


@outbox.command("zip")
@click.argument("delivery_id", type=int)
@click.option("-o", "--output", "out", required=True, type=click.Path(path_type=Path))
def outbox_zip(delivery_id: int, out: Path) -> None:
    """Write the package of DELIVERY_ID as a zip file."""
    from media.fsutil import write_bytes_atomic
    from services import outbox as box

    _ready_db()
    write_bytes_atomic(out, box.zip_bytes(get_settings(), delivery_id))
    click.echo(str(out))


@outbox.command("posted")
@click.argument("delivery_id", type=int)
@click.option("--url", required=True, help="the post's URL on the platform")
@click.option("--as", "as_user", required=True, help="who posted it (username)")
def outbox_posted(delivery_id: int, url: str, as_user: str) -> None:
    """Record that DELIVERY_ID was posted by hand at URL (outbox -> published, audited)."""
    from services import outbox as box
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        delivery = box.record_posted(session, delivery_id, url, _as_user(session, as_user))
        click.echo(f"delivery {delivery.id}: {delivery.state} {delivery.remote_url}")


@main.command("report")
@click.option("--from", "start_text", default=None, help="first day YYYY-MM-DD (default: this quarter's)")
@click.option("--to", "end_text", default=None, help="last day YYYY-MM-DD (default: this quarter's)")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"]), default="xlsx", show_default=True)
@click.option("-o", "--output", "out", required=True, type=click.Path(path_type=Path))
def report_cmd(start_text: str | None, end_text: str | None, fmt: str, out: Path) -> None:
    """The quarterly statistics (情况统计表, 附件7 shape) for a date range, as XLSX or CSV."""
    from datetime import datetime as _dt

    from media.fsutil import write_bytes_atomic
    from services import reports
    from services.db import session_scope

    _ready_db()
    start, end = reports.quarter_of(_dt.now(reports.ZONE).date())
    try:
        start = _dt.strptime(start_text, "%Y-%m-%d").date() if start_text else start
        end = _dt.strptime(end_text, "%Y-%m-%d").date() if end_text else end
    except ValueError as exc:
        _fail(f"dates must be YYYY-MM-DD: {exc}")
    with session_scope() as session:
        report = reports.statistics(session, start, end)
    write_bytes_atomic(out, reports.to_xlsx(report) if fmt == "xlsx" else reports.to_csv(report))
    click.echo(f"{report.title}: {out}")


@main.group()
def alerts() -> None:
    """Ops alerts (beat checks them every minute and sends them through FANOUT_ALERT_URLS)."""


@alerts.command("check")
@click.option("--json", "as_json", is_flag=True)
def alerts_check(as_json: bool) -> None:
    """Evaluate the rules now: open, keep, resolve and send."""
    from services import alerts as service
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        result = service.check(session, get_settings())
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        click.echo(f"opened {len(result['opened'])}, resolved {len(result['resolved'])}, firing {len(result['firing'])}")


@alerts.command("list")
def alerts_list() -> None:
    """Alerts open now."""
    from services import alerts as service
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        for row in service.open_alerts(session):
            click.echo(f"{row.opened_at:%Y-%m-%d %H:%M}  {row.rule:<12} {row.message}")


@main.command("failures")
@click.option("--channel", default=None)
@click.option("--account", "account_id", type=int, default=None)
@click.option("--code", default=None, help="the platform's error code")
@click.option("--json", "as_json", is_flag=True)
def failures_cmd(channel: str | None, account_id: int | None, code: str | None, as_json: bool) -> None:
    """Failed, unknown, held and stuck deliveries with the platform's reason."""
    from services import dispatch, failures
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        rows = [{**dispatch.delivery_view(r.delivery), "kind": r.kind, "why": r.why, "code": r.code,
                 "can_retry": r.can_retry, "can_reconcile": r.can_reconcile, "can_give_up": r.can_give_up}
                for r in failures.failures(session, get_settings(), channel=channel, account_id=account_id, code=code)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    for row in rows:
        click.echo(f"{row['id']:>5}  {row['kind']:<8} {row['channel']}/{row['account']:<16} {row['code'] or '-':<12} {row['why']}")


@main.group()
def delivery() -> None:
    """Ops actions on one delivery (audited): retry, reconcile, give-up."""


@delivery.command("retry")
@click.argument("delivery_id", type=int)
@click.option("--as", "as_user", required=True)
def delivery_retry(delivery_id: int, as_user: str) -> None:
    """A failed delivery starts again (refused when it may already be on the platform)."""
    from services import failures
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        failures.retry(session, _queue(), delivery_id, _as_user(session, as_user))
    click.echo(f"delivery {delivery_id}: planned again")


@delivery.command("reconcile")
@click.argument("delivery_id", type=int)
@click.option("--as", "as_user", required=True)
def delivery_reconcile(delivery_id: int, as_user: str) -> None:
    """Ask the platform again about a delivery whose outcome is unknown."""
    from services import failures
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        failures.reconcile(session, _queue(), delivery_id, _as_user(session, as_user))
    click.echo(f"delivery {delivery_id}: reconcile sent")


@delivery.command("give-up")
@click.argument("delivery_id", type=int)
@click.option("--reason", required=True)
@click.option("--as", "as_user", required=True)
def delivery_give_up(delivery_id: int, reason: str, as_user: str) -> None:
    """Stop trying: the delivery becomes failed with the reason."""
    from services import failures
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        failures.give_up(session, delivery_id, _as_user(session, as_user), reason)
    click.echo(f"delivery {delivery_id}: given up")


@main.command()
def sweep() -> None:
    """Re-enqueue lost work and recover deliveries of dead workers (beat does this every minute)."""
    from services import dispatch

    _ready_db()
    counts = dispatch.sweep(get_settings(), _queue())
    click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


@main.command("audit")
@click.option("--story", "story_id", type=int, default=None)
@click.option("--json", "as_json", is_flag=True)
def audit_cmd(story_id: int | None, as_json: bool) -> None:
    """Show the audit trail (append-only)."""
    from services import audit
    from services.db import session_scope

    _ready_db()
    with session_scope() as session:
        rows = [{"id": e.id, "at": e.at.isoformat(), "actor": e.actor_name, "action": e.action,
                 "object": f"{e.object_type}:{e.object_id}", "version": e.story_version, "summary": e.summary}
                for e in audit.events(session, story_id=story_id)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        click.echo(f"{row['at'][:19]}  {row['actor']:<10} {row['action']:<12} {row['object']:<14} {row['summary']}")


# --------------------------------------------------------------------------- demo


@main.command()
@click.option("--timeout", type=float, default=900.0, show_default=True)
@click.option("--start", default=None, help="the series' first day (default: today, Asia/Shanghai)")
def demo(timeout: float, start: str | None) -> None:
    """Build the 群众满意度提升 campaign: two daily series of six themed issues; release day 1."""
    from services.demo import load_demo, release_first_day

    settings = get_settings()
    _ready_db()
    info = load_demo(settings, _storage(), start=_date(start))
    click.echo(f"demo: {info['stories']} stories; series: {', '.join(info['series'])}; "
               f"accounts: {', '.join(info['accounts'])}")
    story_ids = release_first_day(_queue())
    click.echo(f"day 1 released: {len(story_ids)} stories; the rest follow one a day (see `fanout series show`)")
    rows = _wait_with_workers(story_ids, timeout)
    _print_deliveries(rows)
    bad = [r for r in rows if r["state"] != "published"]
    click.echo(f"\nsite:  {settings.site_dir / 'index.html'}\nfeeds: {settings.site_dir / 'feed.xml'}  "
               f"{settings.site_dir / 'atom.xml'}\nserved at {settings.public_url} by `fanout web`")
    if bad:
        _fail(f"{len(bad)} of {len(rows)} deliveries not published")


def _register_subgroups() -> None:
    from services.cli_media import media

    main.add_command(media)


_register_subgroups()

if __name__ == "__main__":
    main()
