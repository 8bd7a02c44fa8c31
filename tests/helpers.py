"""Small builders shared by tests: real media files, stories, accounts, a recording queue."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RecordingQueue:
    """services.dispatch.TaskQueue that records what would be sent (in-process unit tests)."""

    sent: list[tuple[str, int, float | None]] = field(default_factory=list)
    batches: list[list[int]] = field(default_factory=list)  # each `deliver` call's group

    def render(self, delivery_id: int, countdown: float | None = None) -> None:
        self.sent.append(("render", delivery_id, countdown))

    def deliver(self, delivery_ids: list[int], countdown: float | None = None) -> None:
        self.batches.append(list(delivery_ids))
        self.sent.extend(("deliver", delivery_id, countdown) for delivery_id in delivery_ids)

    def publish(self, delivery_id: int, countdown: float | None = None) -> None:
        self.sent.append(("publish", delivery_id, countdown))

    def reconcile(self, delivery_id: int, countdown: float | None = None) -> None:
        self.sent.append(("reconcile", delivery_id, countdown))

    def retract(self, delivery_id: int, countdown: float | None = None) -> None:
        self.sent.append(("retract", delivery_id, countdown))

    def prepare_review(self, version_id: int) -> None:
        self.sent.append(("prepare_review", version_id, None))

    def of(self, kind: str) -> list[int]:
        """Ids sent as `kind`; "render" also counts "deliver" (render + publish in one task,
        chosen when nothing needs encoding): both are "sent to be rendered"."""
        kinds = ("render", "deliver") if kind == "render" else (kind,)
        return [i for k, i, _ in self.sent if k in kinds]


def jpeg(path: Path, size: tuple[int, int] = (1200, 800), color: tuple[int, int, int] = (200, 60, 40)) -> Path:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, color)
    ImageDraw.Draw(img).rectangle((size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2), fill=(250, 250, 250))
    img.save(path, "JPEG", quality=85)
    return path


def video(path: Path, seconds: float = 2.0) -> Path:
    from media.generate import make_demo_video

    return make_demo_video(path, seconds=seconds, title="测试", size=(640, 360))


def add_site_accounts(session, settings) -> list[int]:  # noqa: ANN001
    from services.accounts import add_account

    return [add_account(session, settings, "website", "网站").id, add_account(session, settings, "rss", "RSS").id]


def add_upkeep_accounts(session, settings, mp, douyin) -> None:  # noqa: ANN001
    """A 公众号 account on the FakeWechatMp `mp` (its quota query answers) and a Douyin account on
    the FakeDouyin `douyin` whose refresh token the platform revoked (its upkeep warns)."""
    from services.accounts import add_account

    add_account(session, settings, "wechat_mp", "黄山区发布", api_base=mp.url,
                credentials={"appid": mp.appid, "secret": mp.secret})
    add_account(session, settings, "douyin", "乡镇抖音号", api_base=douyin.url,
                credentials={**douyin.issue(), "refresh_token": "rft.revoked"})


def make_story(session, storage, tmp: Path, *, title: str = "测试稿件", body: str = "正文第一段。\n\n第二段。",  # noqa: ANN001
               with_video: bool = False, label: str = "群众满意度提升行动之测试篇", campaign: str | None = None) -> int:
    """A story by the desk editor; with `campaign` its label comes from the campaign's template."""
    from services.stories import MediaInput, StoryInput, create_story

    media = [MediaInput(path=jpeg(tmp / f"cover-{title}.jpg"), role="cover", alt="封面图")]
    if with_video:
        media.append(MediaInput(path=video(tmp / "clip.mp4"), role="video"))
    story = create_story(session, storage, StoryInput(title=title, body_markdown=body, summary="摘要",
                                                      theme="基础教育", unit="县教育局", label="" if campaign else label,
                                                      campaign=campaign, media=media),
                         actor=desk(session)["editor"])
    return story.id


def run_pipeline(settings, storage, queue: RecordingQueue, delivery_ids: list[int]) -> list[str]:  # noqa: ANN001
    """Render then publish each delivery in this process (the workers' code path, without Celery)."""
    from services import dispatch

    outcomes = []
    for delivery_id in delivery_ids:
        dispatch.render_delivery(settings, storage, queue, delivery_id, worker="test")
        outcomes.append(dispatch.publish_delivery(settings, storage, queue, delivery_id, worker="test"))
    return outcomes


DESK = {"editor": (["editor"], []), "r1": (["reviewer"], [1]), "r2": (["reviewer"], [2]), "r3": (["reviewer"], [3])}


def desk(session) -> dict:  # noqa: ANN001
    """An editor and one reviewer per level (created once per database)."""
    from sqlalchemy import select

    from services.models import User
    from services.users import create_user

    users = {}
    for name, (roles, levels) in DESK.items():
        user = session.scalar(select(User).where(User.username == name))
        if user is None:
            user, _password = create_user(session, name, roles=roles, levels=levels, password=f"pw-{name}-123")
        users[name] = user
    return users


def approve(settings, storage, story_id: int) -> None:  # noqa: ANN001
    """Take a story through submission and 初审/复审/终审 with the real review service."""
    from services import review
    from services.db import session_scope

    with session_scope() as session:
        review.submit(session, settings, story_id, desk(session)["editor"])
    for name in ("r1", "r2", "r3"):
        with session_scope() as session:
            review.sign(session, settings, storage, story_id, desk(session)[name], approve=True,
                        opinion="同意", acknowledge="all")
