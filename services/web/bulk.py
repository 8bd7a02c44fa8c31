"""批量导入 / 导出 on the story list: upload a manifest (or a zip of a manifest and its media),
download stories with their delivery records, download the template manifest.

The import form posts to `/stories/import`; a manifest with problems comes back to the story list
with every problem in a table (行, 列, 问题 in Chinese) and nothing imported, a good one redirects
to the list with the new drafts' numbers. `/stories/export?format=xlsx|csv|yaml&start=&end=`
downloads the export; `/stories/import/template.xlsx|csv|yaml|zip` the template (the zip also
holds its sample images, so it imports as it is). Routes are thin, as in app.py: parse, call one
services.bulk function, map its errors. `bulk_router(render, flash, stories_page)` builds the
router around app.py's renderer, flash helper and story-list page.
"""
# No `from __future__ import annotations`: FastAPI resolves the routes' Annotated aliases,
# which are local to bulk_router, at run time.
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from services import bulk
from services.config import get_settings
from services.errors import FanoutError, NotFound, ValidationError
from services.models import User
from services.storage import open_storage
from services.users import require_role

MEDIA_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "yaml": "application/yaml; charset=utf-8",
    "zip": "application/zip",
}


def _day(text: str, what: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{what} must be YYYY-MM-DD, got {text!r}", f"{what}格式应为 YYYY-MM-DD") from None


def _download(body: bytes, fmt: str, name: str) -> Response:
    return Response(body, media_type=MEDIA_TYPES[fmt], headers={"Content-Disposition": f'attachment; filename="{name}"'})


def bulk_router(render: Callable[..., HTMLResponse], flash: Callable[[Request, str], None],
                stories_page: Callable[..., HTMLResponse]) -> APIRouter:
    from services.web import app as web

    PageUser = Annotated[User, Depends(web.page_user)]
    Db = Annotated[Session, Depends(web.db_session, scope="function")]
    router = APIRouter()

    @router.post("/stories/import", include_in_schema=False)
    def import_page(request: Request, user: PageUser, session: Db, csrf: Annotated[str, Form()] = "",
                    manifest: Annotated[UploadFile | None, File()] = None) -> Any:
        """批量导入: every row checked first; all rows become drafts of this editor, or none does."""
        web.check_csrf(request, csrf)
        require_role(user, "editor")
        settings = get_settings()
        name = manifest.filename if manifest is not None else ""
        with tempfile.TemporaryDirectory(dir=settings.cache_dir) as tmp:
            try:
                if manifest is None or not manifest.filename:
                    raise ValidationError("choose a manifest to import", "请选择要导入的清单文件（Excel、CSV、YAML 或 zip）")
                spooled = web._save_upload(manifest, Path(tmp), "manifest", "")
                result = bulk.import_manifest(session, open_storage(settings), spooled.path, actor=user,
                                              name=spooled.original_name, work_dir=Path(tmp))
            except FanoutError as exc:
                session.rollback()
                return stories_page(request, session, user, status_code=exc.http_status,
                                    import_error=exc.message_zh, import_name=name,
                                    import_errors=exc.errors if isinstance(exc, bulk.ManifestError) else [])
        numbers = "、".join(f"#{story_id}" for story_id in result.story_ids)
        flash(request, f"已从“{result.manifest}”导入 {len(result.story_ids)} 篇稿件（草稿，需提交审核）：{numbers}")
        return RedirectResponse("/", status_code=303)

    @router.get("/stories/export", include_in_schema=False)
    def export(user: PageUser, session: Db, format: str = "xlsx", start: str = "", end: str = "") -> Response:
        """导出: stories written, edited or published in [start, end] (all when empty), with their deliveries."""
        require_role(user, "editor", "ops", "admin")
        if format not in bulk.FORMATS:
            raise NotFound(f"no export format {format!r}", "不支持的导出格式")
        first, last = _day(start, "开始日期"), _day(end, "结束日期")
        body = bulk.serialise(bulk.export_stories(session, start=first, end=last), format)
        span = f"-{first:%Y%m%d}" if first else ""
        span += f"-{last:%Y%m%d}" if last else ""
        return _download(body, format, f"fanout-stories{span}.{format}")

    @router.get("/stories/import/template.{fmt}", include_in_schema=False)
    def template(fmt: str, user: PageUser) -> Response:
        if fmt not in (*bulk.FORMATS, "zip"):
            raise NotFound(f"no template format {fmt!r}", "不支持的模板格式")
        return _download(bulk.template_bytes(fmt), fmt, f"fanout-import-template.{fmt}")

    return router
