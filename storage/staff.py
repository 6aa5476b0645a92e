"""Staff-console accounts: adding them and checking their passwords."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from storage.db import Database
from storage.models import StaffUser

ROLES = ("admin", "coordinator", "viewer")


def add_user(db: Database, login: str, password: str, role: str, now: datetime) -> None:
    if role not in ROLES:
        raise ValueError(f"役割は {', '.join(ROLES)} のいずれかです")
    with db.unit_of_work() as s:
        if s.scalar(select(StaffUser.id).where(StaffUser.login == login)):
            raise ValueError(f"ユーザー {login} はすでに登録されています")
        s.add(StaffUser(login=login, password_hash=generate_password_hash(password), role=role, created_at=now))
        s.commit()


def has_users(db: Database) -> bool:
    with db.unit_of_work() as s:
        return s.scalar(select(StaffUser.id).limit(1)) is not None


def authenticate(db: Database, login: str, password: str) -> StaffUser | None:
    with db.unit_of_work() as s:
        user = s.scalar(select(StaffUser).where(StaffUser.login == login))
    if user and check_password_hash(user.password_hash, password):
        return user
    return None
