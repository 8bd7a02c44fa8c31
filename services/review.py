"""三审三校: submission, the three sign-offs, rejection, withdrawal, questions, re-approval.

    draft ──submit──▶ submitted ──初审──▶ level1 ──复审──▶ level2 ──终审──▶ approved
      ▲                 │  └─withdraw (author, before any sign-off)─▶ draft
      └── edit (new version; the old one is superseded)     any level ──reject──▶ rejected ──submit──▶ …

Rules enforced here, in the service layer (the UI only mirrors them):
* levels in order, each by a reviewer holding that level; three different people; the author
  of the story never reviews it; one person signs at most one level of a version;
* signatures bind to a version and a review round (a resubmission starts a new round);
* every sign-off re-runs the proof checks (services/proofing.py): blocking findings stop an
  approval; each warning must be acknowledged, and the acknowledgement is recorded;
* every sign-off records the hash of each enabled account's approval rendering
  (services/rendering.py); the dispatcher holds a delivery whose rendering changed since, until
  a 终审 reviewer re-approves that one channel (`reapprove_delivery`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from channels import registry
from channels.base import ChannelError, Post
from media import MediaError
from services import audit, proofing, rendering
from services.accounts import list_accounts
from services.config import Settings
from services.db import after_commit
from services.db import session_scope
from services.errors import NotFound, PermissionDenied, ValidationError
from services.labels import render_label
from services.models import (
    Campaign,
    ChannelAccount,
    ChannelApproval,
    ProofRun,
    ReviewQuestion,
    ReviewState as R,
    Role,
    Signature,
    Story,
    StoryVersion,
    User,
    utcnow,
)
from services.storage import Storage

log = logging.getLogger("fanout.review")

LEVEL_ZH = {1: "初审", 2: "复审", 3: "终审"}
STATE_ZH = {
    "draft": "草稿", "submitted": "待初审", "level1": "待复审", "level2": "待终审", "approved": "已通过三审",
    "rejected": "已退回", "superseded": "已被新版本取代",
}
PENDING_LEVEL = {R.SUBMITTED.value: 1, R.LEVEL1.value: 2, R.LEVEL2.value: 3}
NEXT_STATE = {1: R.LEVEL1.value, 2: R.LEVEL2.value, 3: R.APPROVED.value}


@dataclass
class Preview:
    """What one account will receive, as reviewers see and sign it."""

    account: ChannelAccount
    post: Post | None
    post_hash: str | None
    error: str | None = None


# --------------------------------------------------------------------------- helpers


def current_version(session: Session, story_id: int) -> tuple[Story, StoryVersion]:
    story = session.get(Story, story_id)
    if story is None:
        raise NotFound(f"no story {story_id}", f"稿件 {story_id} 不存在")
    return story, story.current


def authors_of(session: Session, story: Story) -> set[int]:
    """The story's creator and every version's author: none of them may review it."""
    ids = {story.created_by_id} | {v.created_by_id for v in story.versions}
    return {i for i in ids if i is not None}


def reviewer_levels(user: User) -> set[int]:
    return {r.level for r in user.roles if r.role == Role.REVIEWER.value and r.level}


def proof_input(session: Session, version: StoryVersion) -> proofing.ProofInput:
    template, expected = None, None
    if version.campaign_id is not None:
        campaign = session.get(Campaign, version.campaign_id)
        template = campaign.label_template or None
        if template:
            try:
                expected = render_label(template, theme=version.theme, project=version.project, unit=version.unit)
            except ValidationError:
                expected = None  # the label is then missing or stale; label:missing or the typed label shows it
    return proofing.ProofInput(
        title=version.title, body_markdown=version.body_markdown, summary=version.summary,
        short_title=version.short_title, label=version.label, label_template=template, expected_label=expected,
        media=tuple(proofing.ProofMedia(role=m.role, alt=m.alt, position=m.position + 1) for m in version.media),
    )


def enabled_channel_classes(session: Session) -> list[type]:
    known = registry()
    names = sorted({a.channel for a in list_accounts(session, enabled_only=True)})
    return [known[n] for n in names if n in known]


def run_proof(session: Session, settings: Settings, version: StoryVersion, trigger: str,
              previews: list[Preview] | None = None, *, store: bool = True) -> list[proofing.Finding]:
    """Run the 校 checks, add a blocking finding per channel that cannot render, store the run.

    Page views pass `store=False`: the checks are deterministic, so what a reviewer sees is what
    `sign` finds again, without a row per page view.
    """
    findings = proofing.run_checks(settings, proof_input(session, version), enabled_channel_classes(session))
    for preview in previews or []:
        if preview.error:
            findings.append(proofing.Finding(
                key=f"render:{preview.account.id}", code="render", severity="block",
                message=f"{preview.account.channel}/{preview.account.name} cannot render: {preview.error}",
                message_zh=f"{preview.account.name}：无法生成发布内容（{preview.error}）",
                channel=preview.account.channel))
    if store:
        session.add(ProofRun(version_id=version.id, trigger=trigger, findings=[f.to_json() for f in findings]))
    return findings


def previews(session: Session, settings: Settings, storage: Storage, version: StoryVersion) -> list[Preview]:
    """Each enabled account's approval rendering of the version (renditions are cached)."""
    story = rendering.story_data(session, version, version.created_at, public_url=settings.public_url)
    result = []
    for account in list_accounts(session, enabled_only=True):
        try:
            renditions = rendering.renditions_for(settings, storage, account.channel, story, session)
            post = rendering.approval_post(account.channel, story, renditions, version.created_at)
            result.append(Preview(account=account, post=post, post_hash=post.content_hash()))
        except (ChannelError, MediaError) as exc:
            result.append(Preview(account=account, post=None, post_hash=None, error=str(exc)))
    return result


def _warm_up_later(queue: Any, version_id: int) -> None:
    """Best effort: the submission has committed; a broker that refuses only costs speed."""
    try:
        queue.prepare_review(version_id)
    except Exception:  # noqa: BLE001 - any broker failure; the sign-off renders what is missing
        log.warning("could not queue the preview warm-up of version %s", version_id, exc_info=True)


def preview_stylesheet(channel_name: str) -> tuple[str, bytes] | None:
    """The site path and bytes of a channel's stylesheet, for previews shown outside the site."""
    from channels.sitefiles import template_asset
    from channels.website import CSS_ASSET, CSS_PATH

    return (CSS_PATH, template_asset(CSS_ASSET)[0]) if channel_name in ("website", "rss") else None


def warm_previews(settings: Settings, storage: Storage, version_id: int) -> int:
    """Make every rendition the enabled accounts need for a version, in short transactions."""
    with session_scope() as session:
        version = session.get(StoryVersion, version_id)
        if version is None:
            return 0
        story = rendering.story_data(session, version, version.created_at, public_url=settings.public_url)
        channels = sorted({a.channel for a in list_accounts(session, enabled_only=True)})
    made = 0
    for channel in channels:
        try:
            made += sum(len(p) for p in rendering.renditions_for(settings, storage, channel, story).values())
        except (ChannelError, MediaError):
            continue  # the sign-off reports it as a blocking finding
    return made


def _signatures(session: Session, version: StoryVersion, *, all_rounds: bool = False) -> list[Signature]:
    query = select(Signature).where(Signature.version_id == version.id).order_by(Signature.at, Signature.id)
    if not all_rounds:
        query = query.where(Signature.review_round == version.review_round)
    return list(session.scalars(query))


# --------------------------------------------------------------------------- author actions


def submit(session: Session, settings: Settings, story_id: int, actor: User,
           queue: Any = None) -> list[proofing.Finding]:
    """Send the current version to 初审; returns the proof findings the reviewers will see.

    With a task queue, the renditions the previews need are made on the media queue right
    after the commit, so a sign-off finds them cached instead of encoding inside its transaction.
    """
    story, version = current_version(session, story_id)
    if not (actor.has_role(Role.EDITOR) or actor.has_role(Role.ADMIN)):
        raise PermissionDenied(f"user {actor.username} is not an editor", "只有编辑可以提交稿件")
    if version.review_state not in (R.DRAFT.value, R.REJECTED.value):
        raise ValidationError(f"story {story_id} v{version.number} is {version.review_state}, not a draft",
                              f"稿件当前状态为“{STATE_ZH[version.review_state]}”，不能提交")
    version.review_state = R.SUBMITTED.value
    version.review_round += 1
    version.submitted_at = utcnow()
    findings = run_proof(session, settings, version, "submit")
    if queue is not None:
        version_id = version.id
        after_commit(session, lambda: _warm_up_later(queue, version_id))
    audit.record(session, actor=actor, action="submit", object_type="story", object_id=story.id,
                 story_version=version.number,
                 summary=f"submitted v{version.number} (round {version.review_round}); "
                         f"{len(proofing.blocking(findings))} blocking, {len(proofing.warnings(findings))} warnings")
    return findings


def withdraw(session: Session, story_id: int, actor: User) -> None:
    story, version = current_version(session, story_id)
    if actor.id not in authors_of(session, story):
        raise PermissionDenied("only the author may withdraw a submission", "只有作者可以撤回稿件")
    if version.review_state != R.SUBMITTED.value or _signatures(session, version):
        raise ValidationError("a story can be withdrawn only before its first sign-off",
                              "稿件已开始审核，不能撤回")
    version.review_state = R.DRAFT.value
    audit.record(session, actor=actor, action="withdraw", object_type="story", object_id=story.id,
                 story_version=version.number, summary=f"withdrew v{version.number} before review")


def supersede_previous(session: Session, story: Story, new_version: StoryVersion) -> None:
    """An edit makes a new draft version: a version still in review is superseded (review restarts)."""
    for version in story.versions:
        if version.id != new_version.id and version.review_state in (
                R.DRAFT.value, R.SUBMITTED.value, R.LEVEL1.value, R.LEVEL2.value, R.REJECTED.value):
            version.review_state = R.SUPERSEDED.value


# --------------------------------------------------------------------------- reviewer actions


def _check_reviewer(session: Session, story: Story, version: StoryVersion, actor: User, level: int) -> None:
    if level not in reviewer_levels(actor):
        raise PermissionDenied(f"user {actor.username} is not a level-{level} reviewer ({LEVEL_ZH[level]})",
                               f"您不是{LEVEL_ZH[level]}审核人，不能签署{LEVEL_ZH[level]}")
    if actor.id in authors_of(session, story):
        raise PermissionDenied("the author may not review their own story", "作者不能审核自己的稿件")
    other_levels = {s.level for s in _signatures(session, version, all_rounds=True)
                    if s.reviewer_id == actor.id and s.decision == "approve" and s.level != level}
    if other_levels:
        signed = "、".join(LEVEL_ZH[x] for x in sorted(other_levels))
        raise PermissionDenied(f"user {actor.username} already signed level {sorted(other_levels)} of this version; "
                               "three levels need three different reviewers",
                               f"您已签署本版本的{signed}，三审须由三位不同的审核人完成")


def pending_level(version: StoryVersion) -> int | None:
    return PENDING_LEVEL.get(version.review_state)


def sign(session: Session, settings: Settings, storage: Storage, story_id: int, actor: User, *, approve: bool,
         opinion: str = "", acknowledge: Iterable[str] | str = (), level: int | None = None) -> Signature:
    """Approve or reject the level the current version is waiting for.

    `level`, when given, must be that level: a reviewer cannot skip ahead (签 复审 before 初审).
    `acknowledge` lists the warning keys the reviewer confirms, or "all".
    """
    story, version = current_version(session, story_id)
    waiting = pending_level(version)
    if waiting is None:
        raise ValidationError(f"story {story_id} v{version.number} is {version.review_state}: nothing to sign",
                              f"稿件当前状态为“{STATE_ZH.get(version.review_state, version.review_state)}”，无需审核")
    if level is not None and level != waiting:
        raise ValidationError(f"story {story_id} waits for level {waiting} ({LEVEL_ZH[waiting]}), not level {level}",
                              f"稿件正在等待{LEVEL_ZH[waiting]}，不能越级签署{LEVEL_ZH.get(level, level)}")
    _check_reviewer(session, story, version, actor, waiting)
    opinion = (opinion or "").strip()
    if not approve and not opinion:
        raise ValidationError("a rejection needs an opinion for the author", "退回稿件须填写审核意见")
    shown = previews(session, settings, storage, version)
    findings = run_proof(session, settings, version, f"sign:{waiting}", shown)
    acknowledged: list[str] = []
    if approve:
        blockers = proofing.blocking(findings)
        if blockers:
            raise ValidationError("blocking proof findings: " + "; ".join(f.message for f in blockers),
                                  "存在必须修改的问题：" + "；".join(f.message_zh for f in blockers))
        warning_keys = [f.key for f in proofing.warnings(findings)]
        given = set(warning_keys) if acknowledge == "all" else set(acknowledge)
        missing = [f for f in proofing.warnings(findings) if f.key not in given]
        if missing:
            raise ValidationError("unacknowledged warnings: " + "; ".join(f.message for f in missing),
                                  "以下提示需确认后才能签署：" + "；".join(f.message_zh for f in missing))
        acknowledged = warning_keys
    signature = Signature(
        version_id=version.id, review_round=version.review_round, level=waiting, reviewer_id=actor.id,
        decision="approve" if approve else "reject", opinion=opinion,
        post_hashes={str(p.account.id): p.post_hash for p in shown if p.post_hash},
        findings=[f.to_json() for f in findings], acknowledged=acknowledged,
    )
    session.add(signature)
    version.review_state = NEXT_STATE[waiting] if approve else R.REJECTED.value
    session.flush()
    audit.record(
        session, actor=actor, action="approve" if approve else "reject", object_type="story", object_id=story.id,
        story_version=version.number,
        summary=f"{LEVEL_ZH[waiting]} {'approved' if approve else 'rejected'} v{version.number}"
                + (f": {opinion}" if opinion else "") + (f" (acknowledged {len(acknowledged)} warnings)" if acknowledged else ""),
        data={"level": waiting, "round": version.review_round, "post_hashes": signature.post_hashes})
    return signature


def escalate(session: Session, story_id: int, actor: User, question: str) -> ReviewQuestion:
    """拿不准的问题及时请示: ask the next level a question about the version under review."""
    story, version = current_version(session, story_id)
    waiting = pending_level(version)
    question = (question or "").strip()
    if not question:
        raise ValidationError("the question is empty", "请示内容不能为空")
    if waiting is None or waiting == 3:
        raise ValidationError("questions go from 初审 or 复审 to the next level while the story waits there",
                              "只有初审、复审阶段可以向上一级请示")
    _check_reviewer(session, story, version, actor, waiting)
    asked = ReviewQuestion(version_id=version.id, from_level=waiting, asked_by_id=actor.id, question=question)
    session.add(asked)
    session.flush()
    audit.record(session, actor=actor, action="escalate", object_type="story", object_id=story.id,
                 story_version=version.number, summary=f"{LEVEL_ZH[waiting]} asked {LEVEL_ZH[waiting + 1]}: {question}")
    return asked


def answer(session: Session, question_id: int, actor: User, text: str) -> ReviewQuestion:
    asked = session.get(ReviewQuestion, question_id)
    if asked is None:
        raise NotFound(f"no question {question_id}", "请示不存在")
    if asked.answer is not None:
        raise ValidationError("this question was already answered", "该请示已答复")
    text = (text or "").strip()
    if not text:
        raise ValidationError("the answer is empty", "答复内容不能为空")
    to_level = asked.from_level + 1
    version = session.get(StoryVersion, asked.version_id)
    story = session.get(Story, version.story_id)
    if to_level not in reviewer_levels(actor):
        raise PermissionDenied(f"only a level-{to_level} reviewer answers this question",
                               f"只有{LEVEL_ZH[to_level]}审核人可以答复")
    if actor.id in authors_of(session, story):
        raise PermissionDenied("the author may not answer review questions", "作者不能答复审核请示")
    asked.answered_by_id, asked.answer, asked.answered_at = actor.id, text, utcnow()
    audit.record(session, actor=actor, action="answer", object_type="story", object_id=story.id,
                 story_version=version.number, summary=f"{LEVEL_ZH[to_level]} answered: {text}")
    return asked


# --------------------------------------------------------------------------- publishing gate


def approved_hash(session: Session, version_id: int, account_id: int) -> str | None:
    """The approval-rendering hash 终审 (or a later channel re-approval) signed for an account."""
    return approved_hashes(session, version_id, [account_id])[account_id]


def approved_hashes(session: Session, version_id: int, account_ids: list[int]) -> dict[int, str | None]:
    """`approved_hash` for several accounts of one version, in two queries."""
    wanted = {int(a) for a in account_ids}
    reapproved: dict[int, str] = {}
    for account_id, post_hash in session.execute(
            select(ChannelApproval.account_id, ChannelApproval.post_hash).where(
                ChannelApproval.version_id == version_id, ChannelApproval.account_id.in_(wanted))
            .order_by(ChannelApproval.id)):
        if post_hash:
            reapproved[account_id] = post_hash  # the latest re-approval wins
    signed: dict[str, str] = {}
    if wanted - reapproved.keys():  # the column alone: no reviewer (and roles) loaded
        signed = session.scalar(select(Signature.post_hashes).where(
            Signature.version_id == version_id, Signature.level == 3, Signature.decision == "approve")
            .order_by(Signature.id.desc()).limit(1)) or {}
    return {a: reapproved.get(a) or signed.get(str(a)) for a in wanted}


def reapprove_delivery(session: Session, settings: Settings, storage: Storage, queue: Any, delivery_id: int,
                       actor: User) -> ChannelApproval:
    """A 终审 reviewer approves one account's changed rendering; the held delivery goes on."""
    from services import dispatch
    from services.models import Delivery, DeliveryState

    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}", "发布任务不存在")
    if delivery.state != DeliveryState.HELD.value or delivery.last_error_code != "needs_reapproval":
        raise ValidationError(f"delivery {delivery_id} is not waiting for re-approval", "该发布任务无需重新审核")
    version = delivery.version
    story = session.get(Story, version.story_id)
    if 3 not in reviewer_levels(actor):
        raise PermissionDenied("only a 终审 reviewer re-approves a channel", "只有终审审核人可以重新审核渠道内容")
    if actor.id in authors_of(session, story):
        raise PermissionDenied("the author may not review their own story", "作者不能审核自己的稿件")
    if version.review_state != R.APPROVED.value:
        raise ValidationError("the version is no longer approved", "该版本已不是通过状态")
    data = rendering.story_data(session, version, version.created_at, public_url=settings.public_url)
    renditions = rendering.renditions_for(settings, storage, delivery.account.channel, data, session)
    post_hash = rendering.approval_post(delivery.account.channel, data, renditions, version.created_at).content_hash()
    approval = ChannelApproval(version_id=version.id, account_id=delivery.account_id, post_hash=post_hash,
                               approved_by_id=actor.id)
    session.add(approval)
    dispatch.transition(session, delivery_id, [DeliveryState.HELD], DeliveryState.PLANNED,
                        message=f"re-approved by {actor.username}", last_error=None, last_error_code=None)
    after_commit(session, lambda: queue.render(delivery_id))
    audit.record(session, actor=actor, action="reapprove", object_type="story", object_id=story.id,
                 story_version=version.number,
                 summary=f"终审 re-approved {delivery.account.channel}/{delivery.account.name} for v{version.number}")
    return approval


# --------------------------------------------------------------------------- views


def inbox(session: Session, user: User) -> dict[int, list[Story]]:
    """Stories waiting at each of the user's levels, excluding their own stories."""
    by_level: dict[int, list[Story]] = {}
    for level in sorted(reviewer_levels(user)):
        state = {1: R.SUBMITTED.value, 2: R.LEVEL1.value, 3: R.LEVEL2.value}[level]
        versions = session.scalars(select(StoryVersion).where(StoryVersion.review_state == state)
                                   .order_by(StoryVersion.submitted_at)).all()
        stories = [session.get(Story, v.story_id) for v in versions]
        by_level[level] = [s for s in stories if s.current.review_state == state
                           and user.id not in authors_of(session, s)]
    return by_level


def counts(session: Session) -> dict[int, int]:
    rows = session.execute(select(StoryVersion.review_state, func.count()).group_by(StoryVersion.review_state)).all()
    found = dict(rows)
    return {1: found.get(R.SUBMITTED.value, 0), 2: found.get(R.LEVEL1.value, 0), 3: found.get(R.LEVEL2.value, 0)}


def open_questions(session: Session, version: StoryVersion) -> list[ReviewQuestion]:
    return list(session.scalars(select(ReviewQuestion).where(ReviewQuestion.version_id == version.id)
                                .order_by(ReviewQuestion.asked_at)))


def last_approved_version(story: Story, before: StoryVersion) -> StoryVersion | None:
    older = [v for v in story.versions if v.number < before.number and v.review_state == R.APPROVED.value]
    return older[-1] if older else None


def latest_findings(session: Session, version: StoryVersion) -> list[proofing.Finding]:
    run = session.scalar(select(ProofRun).where(ProofRun.version_id == version.id).order_by(ProofRun.id.desc()).limit(1))
    return [proofing.Finding.from_json(f) for f in run.findings] if run else []


def status(session: Session, story_id: int) -> dict[str, Any]:
    story, version = current_version(session, story_id)
    return {
        "story_id": story.id, "version": version.number, "review_state": version.review_state,
        "review_state_zh": STATE_ZH.get(version.review_state, version.review_state), "round": version.review_round,
        "waiting_for": LEVEL_ZH.get(pending_level(version) or 0),
        "versions": [{"number": v.number, "title": v.title, "review_state": v.review_state,
                      "created_at": v.created_at.isoformat()} for v in story.versions],
        "signatures": [{"level": s.level, "level_zh": LEVEL_ZH[s.level], "reviewer": s.reviewer.username,
                        "decision": s.decision, "opinion": s.opinion, "round": s.review_round, "at": s.at.isoformat(),
                        "post_hashes": s.post_hashes, "acknowledged": s.acknowledged}
                       for s in _signatures(session, version, all_rounds=True)],
        "findings": [f.to_json() for f in latest_findings(session, version)],
        "questions": [{"id": q.id, "from_level": q.from_level, "question": q.question,
                       "asked_by": q.asked_by.username, "answer": q.answer,
                       "answered_by": q.answered_by.username if q.answered_by else None}
                      for q in open_questions(session, version)],
    }

