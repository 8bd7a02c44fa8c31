"""Demo data in the spirit of the seed plan "群众满意度提升行动宣传方案" (../shared/seeds/).

Six image-text stories, one per theme the plan names (基础教育, 基本医疗, 困难帮扶, 居住环境,
社会治安, 文体生活), each with the responsible unit (责任单位) the plan assigns, a generated
cover image, and — for 文体生活 — a short generated video like the plan's "1 分钟左右" clips.
The campaign label is put at the start of every piece, as the plans require. An editor writes
them and three reviewers take each through 初审, 复审 and 终审 (严格执行“三审三校”) before it
is published; their passwords are written to FANOUT_HOME/demo-users.txt. Two accounts: the
media center's website and its RSS feed. Loading is idempotent (keyed by the demo titles).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select

from services.accounts import add_account
from services.config import Settings
from services.db import session_scope
from services.models import ChannelAccount, StoryVersion, User
from services.stories import MediaInput, StoryInput, create_story
from services.storage import Storage
from services.users import create_user

CAMPAIGN = "群众满意度提升行动"
LABEL = "群众满意度提升行动之{theme}篇"

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


# The demo desk: an editor and one reviewer per level, as 三审 needs three different people.
DEMO_USERS = [
    ("editor", "县融媒体中心编辑", ["editor"], []),
    ("chushen", "初审审核人", ["reviewer"], [1]),
    ("fushen", "复审审核人", ["reviewer"], [2]),
    ("zhongshen", "终审审核人", ["reviewer"], [3]),
]


def _admin(session, settings: Settings) -> User:  # noqa: ANN001
    admin = session.scalar(select(User).where(User.username == "admin"))
    if admin is not None:
        return admin
    admin, password = create_user(session, "admin", roles=["admin"], unit="县融媒体中心", display_name="管理员")
    path = settings.resolved_home / "admin-password.txt"
    path.write_text(password + "\n", encoding="utf-8")
    path.chmod(0o600)
    return admin


def _demo_users(session, settings: Settings, admin: User) -> dict[str, User]:  # noqa: ANN001
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


def _ensure_account(session, settings: Settings, channel: str, name: str, actor: User) -> ChannelAccount:  # noqa: ANN001
    account = session.scalar(select(ChannelAccount).where(ChannelAccount.channel == channel,
                                                          ChannelAccount.name == name))
    return account or add_account(session, settings, channel, name, actor=actor)


def demo_story_ids() -> list[int]:
    titles = [t["title"] for t in THEMES]
    with session_scope() as session:
        rows = session.execute(select(StoryVersion.story_id, StoryVersion.title)
                               .where(StoryVersion.title.in_(titles), StoryVersion.number == 1)).all()
    by_title = {title: story_id for story_id, title in rows}
    return [by_title[t] for t in titles if t in by_title]


def load_demo(settings: Settings, storage: Storage, *, publish: bool = False) -> dict[str, Any]:
    """Create the demo users, accounts and stories once; returns what is there."""
    from media.generate import make_demo_image, make_demo_video

    with session_scope() as session:
        admin = _admin(session, settings)
        editor_id = _demo_users(session, settings, admin)["editor"].id
        accounts = [_ensure_account(session, settings, "website", "融媒体中心网站", admin),
                    _ensure_account(session, settings, "rss", "融媒体中心 RSS", admin)]
        account_names = [f"{a.channel}/{a.name}" for a in accounts]
    existing = set(demo_story_ids())
    if len(existing) < len(THEMES):
        with tempfile.TemporaryDirectory(dir=settings.cache_dir) as tmp:
            for seed, item in enumerate(THEMES):
                with session_scope() as session:
                    if session.scalar(select(StoryVersion.id).where(StoryVersion.title == item["title"])):
                        continue
                    label = LABEL.format(theme=item["theme"])
                    cover = make_demo_image(Path(tmp) / f"cover-{seed}.jpg", item["theme"], subtitle=CAMPAIGN,
                                            seed=seed, font=settings.font_path)
                    media = [MediaInput(path=cover, role="cover", alt=f"{item['theme']}主题配图：{item['title']}")]
                    if item["theme"] == "文体生活":
                        video = make_demo_video(Path(tmp) / "clip.mp4", seconds=settings.demo_video_seconds,
                                                title=label, font=settings.font_path)
                        media.append(MediaInput(path=video, role="video"))
                    create_story(session, storage, StoryInput(
                        title=item["title"], body_markdown=item["body"], summary=item["summary"],
                        theme=item["theme"], unit=item["unit"], label=label, tags=[CAMPAIGN, item["theme"]],
                        media=media), actor=session.get(User, editor_id))
    review_demo(settings, storage)
    return {"stories": len(demo_story_ids()), "accounts": account_names}


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


def publish_demo(queue) -> list[int]:  # noqa: ANN001 - services.dispatch.TaskQueue
    """Plan deliveries for every approved demo story (idempotent) and return their ids."""
    from services import dispatch

    story_ids = demo_story_ids()
    for story_id in story_ids:
        with session_scope() as session:
            admin = session.scalar(select(User).where(User.username == "admin"))
            dispatch.plan_publication(session, queue, story_id, actor=admin)
    return story_ids
