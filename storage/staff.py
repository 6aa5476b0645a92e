"""Staff-console accounts: adding and listing them, setting and checking their passwords."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from storage.db import Database
from storage.models import StaffUser

ROLES = ("admin", "coordinator", "viewer")
MIN_PASSWORD = 8


def add_user(db: Database, login: str, password: str, role: str, now: datetime) -> None:
    if role not in ROLES:
        raise ValueError(f"役割は {', '.join(ROLES)} のいずれかです")
    with db.unit_of_work() as s:
        if s.scalar(select(StaffUser.id).where(StaffUser.login == login)):
            raise ValueError(f"ユーザー {login} はすでに登録されています")
        user = StaffUser(login=login, role=role, created_at=now)
        _set_password(user, password)
        s.add(user)
        s.commit()


def change_password(db: Database, login: str, password: str) -> None:
    """Give an existing user a new password; ValueError (Japanese) for an unknown login or a too-short password."""
    with db.unit_of_work() as s:
        user = s.scalar(select(StaffUser).where(StaffUser.login == login))
        if user is None:
            raise ValueError(f"ユーザー {login} は登録されていません")
        _set_password(user, password)
        s.commit()


def _set_password(user: StaffUser, password: str) -> None:
    # The one place a password is set, for new users and changed passwords alike.
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"パスワードは{MIN_PASSWORD}文字以上にしてください。")
    user.password_hash = generate_password_hash(password)


def list_users(db: Database) -> list[StaffUser]:
    with db.unit_of_work() as s:
        return list(s.scalars(select(StaffUser).order_by(StaffUser.login)))


def has_users(db: Database) -> bool:
    with db.unit_of_work() as s:
        return s.scalar(select(StaffUser.id).limit(1)) is not None


def authenticate(db: Database, login: str, password: str) -> StaffUser | None:
    with db.unit_of_work() as s:
        user = s.scalar(select(StaffUser).where(StaffUser.login == login))
    if user and check_password_hash(user.password_hash, password):
        return user
    return None
