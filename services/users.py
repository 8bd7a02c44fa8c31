"""Users, roles and passwords (argon2id). Permission checks live in the service layer.

Roles: editor, reviewer (levels 1–3: 初审/复审/终审), ops, admin. `create_user` generates a
password when none is given and returns it once; only its hash is stored.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit
from services.errors import AuthenticationFailed, Conflict, NotFound, PermissionDenied, ValidationError
from services.models import Role, User, UserRole

_HASHER = PasswordHasher()
ROLE_NAMES = tuple(r.value for r in Role)


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def create_user(session: Session, username: str, *, roles: list[str], levels: list[int] | None = None,
                unit: str = "", display_name: str = "", password: str | None = None,
                actor: User | None = None) -> tuple[User, str]:
    username = username.strip()
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        raise ValidationError("username must be 1-64 characters without spaces", "用户名须为 1–64 个字符且不含空格")
    unknown = [r for r in roles if r not in ROLE_NAMES]
    if not roles or unknown:
        raise ValidationError(f"unknown role(s) {unknown or roles}; roles: {', '.join(ROLE_NAMES)}",
                              "角色无效")
    if session.scalar(select(User).where(User.username == username)):
        raise Conflict(f"user {username!r} already exists", f"用户 {username} 已存在")
    password = password or generate_password()
    user = User(username=username, display_name=display_name or username, unit=unit,
                password_hash=_HASHER.hash(password))
    for role in roles:
        if role == Role.REVIEWER.value:
            for level in levels or [1]:
                if level not in (1, 2, 3):
                    raise ValidationError("review level must be 1, 2 or 3", "审核级别须为 1、2 或 3")
                user.roles.append(UserRole(role=role, level=level))
        else:
            user.roles.append(UserRole(role=role))
    session.add(user)
    session.flush()
    audit.record(session, actor=actor, action="create", object_type="user", object_id=user.id,
                 summary=f"user {username} roles={','.join(roles)}")
    return user, password


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise NotFound(f"no user {user_id}", "用户不存在")
    return user


def find_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        raise NotFound(f"no user {username!r}", f"用户 {username} 不存在")
    return user


def authenticate(session: Session, username: str, password: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    ok = False
    if user is not None and user.active:
        try:
            ok = _HASHER.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            ok = False
    else:
        _HASHER.hash(password)  # same cost either way: no user enumeration by timing
    if not ok:
        audit.record(session, actor=None, action="login_failed", object_type="user", object_id=username,
                     summary="wrong username or password")
        raise AuthenticationFailed("wrong username or password", "用户名或密码错误")
    audit.record(session, actor=user, action="login", object_type="user", object_id=user.id)
    return user


def set_password(session: Session, user: User, password: str | None = None) -> str:
    password = password or generate_password()
    user.password_hash = _HASHER.hash(password)
    audit.record(session, actor=user, action="password", object_type="user", object_id=user.id)
    return password


def require_role(user: User | None, *roles: str) -> User:
    """The permission check every service function that changes state calls first."""
    if user is None:
        raise PermissionDenied("login required", "请先登录")
    if user.has_role(Role.ADMIN) or any(user.has_role(r) for r in roles):
        return user
    raise PermissionDenied(f"user {user.username} lacks role {' or '.join(roles)}",
                           f"当前用户没有权限（需要角色：{'、'.join(roles)}）")
