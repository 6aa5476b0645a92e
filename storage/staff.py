"""Staff-console accounts: adding and listing them, signing in with lock-outs, sessions that can be ended, password changes."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from storage.db import Database
from storage.models import LoginThrottle, StaffSession, StaffUser

ROLES = ("admin", "coordinator", "viewer")
MIN_PASSWORD = 8

LOGIN_FAILURES = 5  # in a row, then the typed login waits LOCK_FOR
LOCK_FOR = timedelta(minutes=15)
ADDRESS_FAILURES = 10  # free failures from one address; after them each one doubles its wait, up to LOCK_FOR
FAILURE_WINDOW = timedelta(minutes=15)  # failures older than this are forgotten
SESSION_IDLE = timedelta(hours=1)
SESSION_LIFETIME = timedelta(hours=12)
TOUCH_EVERY = timedelta(minutes=1)  # how stale last_seen_at may get, to spare a write per page view



@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in attempt: the user, or (when refused without a try) until when to wait."""

    user: StaffUser | None = None
    locked_until: datetime | None = None


def add_user(db: Database, login: str, password: str, role: str, now: datetime,
             coordinator_id: str | None = None) -> None:
    """A new login; `coordinator_id` (a [[coordinators]] id, checked by the caller) makes its 自分の担当 that person's."""
    if role not in ROLES:
        raise ValueError(f"役割は {', '.join(ROLES)} のいずれかです")
    with db.unit_of_work() as s:
        if s.scalar(select(StaffUser.id).where(StaffUser.login == login)):
            raise ValueError(f"ユーザー {login} はすでに登録されています")
        user = StaffUser(login=login, role=role, created_at=now, coordinator_id=coordinator_id or None)
        _set_password(user, password)
        s.add(user)
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
        # A control character cannot be in a login (and PostgreSQL refuses a NUL in a query): unknown, like any.
        user = s.scalar(select(StaffUser).where(StaffUser.login == login)) if login.isprintable() else None
    matches = check_password_hash(user.password_hash if user else _dummy_hash(), password)
    return user if user and matches else None


@cache
def _dummy_hash() -> str:
    # Checked when the login is unknown, so that it costs the same hash as a known one and cannot be told apart.
    return generate_password_hash(secrets.token_urlsafe(16))


def sign_in(db: Database, login: str, password: str, address: str, now: datetime) -> SignIn:
    """Check a password unless the typed login or the address must wait; a failure counts against both.

    The attempt is counted before the password is checked, in one locked transaction, so that a burst of parallel
    attempts cannot slip past the limit; a success takes its count back. Unknown logins are counted and locked
    exactly like known ones, so a lock tells nothing about who exists.
    """
    keys = (_key("login", login), _key("address", address))
    locked_until = _count_attempt(db, keys, now)
    if locked_until:
        return SignIn(locked_until=locked_until)
    user = authenticate(db, login, password)
    if user is not None:
        with db.unit_of_work() as s:
            s.execute(delete(LoginThrottle).where(LoginThrottle.key == keys[0]))
            s.execute(update(LoginThrottle).where(LoginThrottle.key == keys[1], LoginThrottle.failures > 0)
                      .values(failures=LoginThrottle.failures - 1))
            s.commit()
    return SignIn(user=user)


def _key(kind: str, value: str) -> str:
    # Hashed: a password typed into the login field by mistake is not kept readable.
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def _count_attempt(db: Database, keys: tuple[str, str], now: datetime) -> datetime | None:
    """Count one attempt against the login and the address, or (counting nothing) until when one of them waits."""
    for attempt in range(2):  # two first attempts of one key at once: the loser's insert clashes; count again
        try:
            with db.unit_of_work() as s:
                login_row, address_row = (s.get(LoginThrottle, key, with_for_update=True) or
                                          LoginThrottle(key=key, failures=0, last_failure_at=now) for key in keys)
                waits = [row.locked_until for row in (login_row, address_row)
                         if row.locked_until and row.locked_until > now]
                if waits:
                    return max(waits)
                for row in (login_row, address_row):
                    if row.last_failure_at < now - FAILURE_WINDOW:
                        row.failures = 0
                    row.failures += 1
                    row.last_failure_at = now
                    s.add(row)
                if login_row.failures >= LOGIN_FAILURES:
                    login_row.failures, login_row.locked_until = 0, now + LOCK_FOR
                beyond = address_row.failures - ADDRESS_FAILURES
                if beyond > 0:
                    # 1, 2, 4 ... seconds; the exponent stops where the wait is past LOCK_FOR anyway
                    address_row.locked_until = now + min(timedelta(seconds=2 ** min(beyond - 1, 10)), LOCK_FOR)
                s.execute(delete(LoginThrottle).where(LoginThrottle.last_failure_at < now - LOCK_FOR - FAILURE_WINDOW))
                s.commit()
            return None
        except IntegrityError:
            if attempt:
                raise


def open_session(db: Database, user_id: int, now: datetime) -> str:
    """A new session for a user; the token goes in the (signed) cookie, only its hash in the database."""
    token = secrets.token_urlsafe(32)
    with db.unit_of_work() as s:
        s.add(StaffSession(id=_session_id(token), user_id=user_id, created_at=now, last_seen_at=now))
        s.commit()
    return token


def session_user(db: Database, token: str, now: datetime) -> StaffUser | None:
    """The user of a live session, which this use keeps alive; None once it has ended, idled out or grown too old."""
    with db.unit_of_work() as s:
        row = s.get(StaffSession, _session_id(token)) if token else None
        if row is None:
            return None
        if row.last_seen_at <= now - SESSION_IDLE or row.created_at <= now - SESSION_LIFETIME:
            s.delete(row)
            s.commit()
            return None
        if row.last_seen_at <= now - TOUCH_EVERY:
            row.last_seen_at = now
            s.commit()
        return s.get(StaffUser, row.user_id)


def close_session(db: Database, token: str) -> None:
    with db.unit_of_work() as s:
        s.execute(delete(StaffSession).where(StaffSession.id == _session_id(token)))
        s.commit()


def change_password(db: Database, login: str, password: str) -> None:
    """Set a new password and end every session of the user: a stolen cookie stops working with the old password."""
    with db.unit_of_work() as s:
        user = s.scalar(select(StaffUser).where(StaffUser.login == login).with_for_update())
        if user is None:
            raise ValueError(f"ユーザー {login} は登録されていません。")
        _set_password(user, password)
        s.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
        s.commit()


def link_coordinator(db: Database, login: str, coordinator_id: str | None) -> None:
    """Link a login to a coordinator (its 自分の担当), or unlink it with None; the next page counts it."""
    with db.unit_of_work() as s:
        user = s.scalar(select(StaffUser).where(StaffUser.login == login))
        if user is None:
            raise ValueError(f"ユーザー {login} は登録されていません。")
        user.coordinator_id = coordinator_id or None
        s.commit()


def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
