"""Demo data in the spirit of the seed plan "群众满意度提升行动宣传方案" (../shared/seeds/).

The plan's campaign with its label template (群众满意度提升行动之{theme}篇) and its two daily
series, 自X月X日起，每日推出一期: a 图文报道 series and a 短视频 series (clips "1 分钟左右"; the
demo's are shorter), six issues each on consecutive days from a start date, one per theme the
plan names (基础教育, 基本医疗, 困难帮扶, 居住环境, 社会治安, 文体生活), each story with the
responsible unit (责任单位) the plan assigns and a generated cover (and clip). An editor writes
them and three reviewers take each through 初审, 复审 and 终审 (严格执行“三审三校”); passwords
go to FANOUT_HOME/demo-users.txt. Every story is queued into its day, and the first day is
released at once; beat releases the rest, one issue a day. Two accounts: the media center's
website and its RSS feed. Loading is idempotent (keyed by the demo titles and series names).
"""

from __future__ import annotations

import logging
import tempfile
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from services.accounts import add_account
from services.config import Settings
from services.db import session_scope
from services.errors import FanoutError
from services.models import Campaign, ChannelAccount, Series, Slot, StoryVersion, User
from services.storage import Storage
from services.stories import MediaInput, StoryInput, create_story
from services.users import create_user

SHANGHAI = ZoneInfo("Asia/Shanghai")
log = logging.getLogger("fanout.demo")

CAMPAIGN = "群众满意度提升行动"
LABEL = "群众满意度提升行动之{theme}篇"
ARTICLES = "群众满意度提升系列图文报道"
CLIPS = "群众满意度提升系列短视频"
SERIES = [  # (name, kind, release time): 每日推出一期
    (ARTICLES, "图文", "08:00"),
    (CLIPS, "短视频", "12:00"),
]

THEMES: list[dict[str, str]] = [
    {
        "theme": "基础教育", "unit": "县教育局",
        "title": "抓实三大短板 全县教育质量稳步提升",
        "summary": "我县抓实校外培训、有偿补课、学生课业负担三大短板提升，深化基础教育改革。",
        "body": "今年以来，县教育局围绕**校外培训、有偿补课、学生课业负担**三大短板持续发力，推动全县教育质量稳步提升。\n\n"
                "全县中小学全面落实课后服务“5+2”模式，参与学生比例达到 98%。学校同步推进重点工程建设，"
                "新建、改扩建校舍 3 所，新增学位 1200 个。\n\n下一步，县教育局将继续深化基础教育改革，强化对外合作交流。",
    },
    {
        "theme": "基本医疗", "unit": "县卫生健康局",
        "title": "医疗服务能力提升工程惠及城乡群众",
        "summary": "实施医疗服务能力提升工程，推进公共卫生服务下沉，抓好医保政策落实。",
        "body": "县卫生健康局、县医疗保障局、县市场监管局协同推进**医疗服务能力提升工程**。\n\n"
                "全县乡镇卫生院实现远程会诊全覆盖，家庭医生签约服务重点人群覆盖率超过 80%；"
                "药品专项整治活动检查药店 260 家次。\n\n群众看病就医更方便、更省心。",
    },
    {
        "theme": "困难帮扶", "unit": "县民政局",
        "title": "精准帮扶困难群众 筑牢民生保障底线",
        "summary": "高度重视残疾人民生改善，精准帮扶困难群众，推进社会救助城乡统筹试点。",
        "body": "县乡村振兴局、县残联、县民政局聚焦困难群众“急难愁盼”，**精准帮扶**到户到人。\n\n"
                "今年累计发放各类救助资金 3100 余万元，为 420 户残疾人家庭完成无障碍改造。\n\n"
                "社会救助城乡统筹试点工作扎实推进，救助申请“一门受理、协同办理”。",
    },
    {
        "theme": "居住环境", "unit": "县生态环境局",
        "title": "人居环境整治提升 村美民富气象新",
        "summary": "深化农村人居环境整治提升，优化社区居住环境，开展农贸市场环境整治。",
        "body": "县生态环境局、县农业农村局、县住房城建局等单位深化**农村人居环境整治提升**。\n\n"
                "全县完成农村改厕 5600 户，生活垃圾无害化处理率保持 100%，整治农贸市场和农村集市 18 处。\n\n"
                "> 村里的路宽了、水清了，住着更舒心了。——一位村民这样说。",
    },
    {
        "theme": "社会治安", "unit": "县公安局",
        "title": "全力提升社会治理效能 守护群众平安",
        "summary": "严打各类违法犯罪，加强执法规范化建设和道路交通安全整治。",
        "body": "县公安局坚持**严打各类违法犯罪**，全力提升社会治理效能。\n\n"
                "今年以来，全县刑事警情同比下降 12.6%，道路交通事故起数同比下降 9.3%。"
                "执法规范化建设持续加强，群众安全感稳步提升。",
    },
    {
        "theme": "文体生活", "unit": "县文化和旅游局",
        "title": "文化惠民活动进万家 公共文化服务提质增效",
        "summary": "健全公共文化服务设施网络，提升服务质量，广泛开展文化惠民活动。",
        "body": "县文化和旅游局健全完善**公共文化服务设施网络**，全县 16 个乡镇综合文化站全部免费开放。\n\n"
                "今年开展送戏下乡、广场舞展演等文化惠民活动 300 余场，惠及群众 12 万人次。\n\n"
                "本期短视频带您走进乡村文化舞台。",
    },
]


# One short clip per theme for the 短视频 series (title, one-line body).
CLIP_STORIES: list[dict[str, str]] = [
    {"theme": t["theme"], "unit": t["unit"], "title": f"短视频｜{title}", "summary": summary,
     "body": f"{summary}\n\n1 分钟带您看{t['theme']}领域的新变化。"}
    for t, title, summary in [
        (THEMES[0], "课后服务“5+2”全覆盖", "走进县城中小学的课后服务课堂。"),
        (THEMES[1], "家门口的远程会诊", "乡镇卫生院连线县医院专家，群众少跑腿。"),
        (THEMES[2], "无障碍改造进家门", "420 户残疾人家庭完成无障碍改造。"),
        (THEMES[3], "村美民富气象新", "航拍农村人居环境整治后的新面貌。"),
        (THEMES[4], "平安守护每一天", "跟随民警巡逻，守护群众平安。"),
        (THEMES[5], "乡村文化舞台", "送戏下乡、广场舞展演走进村村寨寨。"),
    ]
]


# The demo desk: an editor and one reviewer per level, as 三审 needs three different people.
DEMO_USERS = [
    ("editor", "县融媒体中心编辑", ["editor"], []),
    ("chushen", "初审审核人", ["reviewer"], [1]),
    ("fushen", "复审审核人", ["reviewer"], [2]),
    ("zhongshen", "终审审核人", ["reviewer"], [3]),
]


def _admin(session, settings: Settings) -> User:
    admin = session.scalar(select(User).where(User.username == "admin"))
    if admin is not None:
        return admin
    admin, password = create_user(session, "admin", roles=["admin"], unit="县融媒体中心", display_name="管理员")
    path = settings.resolved_home / "admin-password.txt"
    path.write_text(password + "\n", encoding="utf-8")
    path.chmod(0o600)
    return admin


def _demo_users(session, settings: Settings, admin: User) -> dict[str, User]:
    """Create the demo desk once; passwords go to FANOUT_HOME/demo-users.txt (mode 0600)."""
    users: dict[str, User] = {}
    lines = []
    for username, display, roles, levels in DEMO_USERS:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            user, password = create_user(session, username, roles=roles, levels=levels, unit="县融媒体中心",
                                         display_name=display, actor=admin)
            lines.append(f"{username} {password}  # {display}")
        users[username] = user
    if lines:
        path = settings.resolved_home / "demo-users.txt"
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        path.chmod(0o600)
    return users


def _ensure_account(session, settings: Settings, channel: str, name: str, actor: User) -> ChannelAccount:
    account = session.scalar(select(ChannelAccount).where(ChannelAccount.channel == channel,
                                                          ChannelAccount.name == name))
    return account or add_account(session, settings, channel, name, actor=actor)


def demo_story_ids() -> list[int]:
    """Every demo story's id: the six articles, then the six clips."""
    titles = [t["title"] for t in THEMES] + [c["title"] for c in CLIP_STORIES]
    with session_scope() as session:
        rows = session.execute(select(StoryVersion.story_id, StoryVersion.title)
                               .where(StoryVersion.title.in_(titles), StoryVersion.number == 1)).all()
    by_title = {title: story_id for story_id, title in rows}
    return [by_title[t] for t in titles if t in by_title]


def _ensure_campaign(session, settings: Settings, start: date, account_ids: list[int], admin: User) -> None:
    from services import schedule

    if session.scalar(select(Campaign.id).where(Campaign.name == CAMPAIGN)) is None:
        schedule.add_campaign(session, CAMPAIGN, label_template=LABEL, starts_on=start,
                              themes=[t["theme"] for t in THEMES], actor=admin)
    for name, kind, release_time in SERIES:
        if session.scalar(select(Series.id).where(Series.name == name)) is None:
            schedule.add_series(session, settings, name, campaign=CAMPAIGN, kind=kind, cadence_name="daily",
                                start=start, release_time=release_time, count=len(THEMES),
                                accounts=[str(i) for i in account_ids], actor=admin)


def _create_stories(settings: Settings, storage: Storage, editor_id: int) -> None:
    from media.generate import make_demo_image, make_demo_video

    with tempfile.TemporaryDirectory(dir=settings.cache_dir) as tmp:
        for seed, (item, clip) in enumerate([(t, False) for t in THEMES] + [(c, True) for c in CLIP_STORIES]):
            with session_scope() as session:
                if session.scalar(select(StoryVersion.id).where(StoryVersion.title == item["title"])):
                    continue
                label = LABEL.format(theme=item["theme"])
                cover = make_demo_image(Path(tmp) / f"cover-{seed}.jpg", item["theme"], subtitle=CAMPAIGN,
                                        seed=seed, font=settings.font_path)
                media = [MediaInput(path=cover, role="cover", alt=f"{item['theme']}主题配图：{item['title']}")]
                if clip:
                    video = make_demo_video(Path(tmp) / f"clip-{seed}.mp4", seconds=settings.demo_video_seconds,
                                            title=label, seed=seed, font=settings.font_path)
                    media.append(MediaInput(path=video, role="video"))
                create_story(session, storage, StoryInput(
                    title=item["title"], body_markdown=item["body"], summary=item["summary"],
                    theme=item["theme"], unit=item["unit"], campaign=CAMPAIGN,
                    tags=[CAMPAIGN, item["theme"], "短视频" if clip else "图文"], media=media),
                    actor=session.get(User, editor_id))


def load_demo(settings: Settings, storage: Storage, *, start: date | None = None) -> dict[str, Any]:
    """Create the demo users, accounts, campaign, series and stories once, review every story,
    and queue each into its day; returns what is there. Releasing is `release_first_day`."""
    start = start or datetime.now(SHANGHAI).date()
    with session_scope() as session:
        admin = _admin(session, settings)
        editor_id = _demo_users(session, settings, admin)["editor"].id
        accounts = [_ensure_account(session, settings, "website", "融媒体中心网站", admin),
                    _ensure_account(session, settings, "rss", "融媒体中心 RSS", admin)]
        account_names = [f"{a.channel}/{a.name}" for a in accounts]
        _ensure_campaign(session, settings, start, [a.id for a in accounts], admin)
    if len(demo_story_ids()) < len(THEMES) + len(CLIP_STORIES):
        _create_stories(settings, storage, editor_id)
    review_demo(settings, storage)
    queued = queue_demo()
    return {"stories": len(demo_story_ids()), "accounts": account_names, "queued": queued,
            "series": [name for name, _kind, _time in SERIES]}


def queue_demo() -> int:
    """Queue the articles and the clips into their series, theme by theme, one a day.

    The plan is laid as it stood on the morning of the series' first day, so the first day's issue
    can be queued even when the demo is loaded after its release time; a day already past is left
    to the tick (which flags it missed)."""
    from services import schedule

    ids = demo_story_ids()
    articles, clips = ids[:len(THEMES)], ids[len(THEMES):]
    queued = 0
    for series_name, story_ids in ((ARTICLES, articles), (CLIPS, clips)):
        with session_scope() as session:
            series = schedule.find_series(session, series_name)
            slots = schedule.slots_of(session, series.id)
            taken = {s.story_id for s in slots if s.story_id}
            plan_time = datetime.combine(series.starts_on, time(0), SHANGHAI)
            jobs = [(slot.day, story_id) for slot, story_id in zip(slots, story_ids)
                    if story_id not in taken and slot.state == "open"]
        for day, story_id in jobs:
            try:
                with session_scope() as session:
                    schedule.queue_story(session, story_id, series_name, day=day,
                                         now=plan_time)
                    queued += 1
            except FanoutError as exc:
                log.warning("demo: story %s not queued on %s: %s", story_id, day, exc)
    return queued


def release_first_day(queue) -> list[int]:
    """Release issue 1 of each demo series now (idempotent); the story ids released, now or before."""
    from services import schedule

    released = []
    for series_name, _kind, _time in SERIES:
        with session_scope() as session:
            series = schedule.find_series(session, series_name)
            first = session.scalar(select(Slot).where(Slot.series_id == series.id, Slot.issue_number == 1))
            if first is None or first.story_id is None:
                continue
            if first.state in ("filled", "missed"):
                schedule.release_now(session, queue, first.id,
                                     actor=session.scalar(select(User).where(User.username == "editor")))
            if first.state == "released" or first.released_at is not None:
                released.append(first.story_id)
    return released


def review_demo(settings: Settings, storage: Storage) -> None:
    """Take every demo story through submission and 初审/复审/终审 by the demo reviewers."""
    from services import review

    for story_id in demo_story_ids():
        with session_scope() as session:
            version = review.current_version(session, story_id)[1]
            if version.review_state in ("draft", "rejected"):
                review.submit(session, settings, story_id, session.scalar(select(User).where(User.username == "editor")))
            version_id = version.id
        review.warm_previews(settings, storage, version_id)  # encode outside the sign-off transactions
        for reviewer in ("chushen", "fushen", "zhongshen"):
            with session_scope() as session:
                version = review.current_version(session, story_id)[1]
                if review.pending_level(version) is None:
                    break
                user = session.scalar(select(User).where(User.username == reviewer))
                if review.pending_level(version) not in review.reviewer_levels(user):
                    continue
                review.sign(session, settings, storage, story_id, user, approve=True,
                            opinion="同意，符合三审三校要求。", acknowledge="all")
