# The accounts repositories: the SQL behind services.ports.accounts (people, sessions, API tokens).
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from gateway.adapters.db.models import ApiToken, AuthSession, Site, User, UserSite
from gateway.domain.roles import Person


class SqlPeople:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def id_of(self, name: str) -> int | None:
        uid = self.conn.execute(select(User.id).where(User.name == name)).scalar()
        return None if uid is None else int(uid)

    def add(self, name: str, password_hash: str, role: str, now: float) -> int:
        uid: int = self.conn.execute(
            insert(User)
            .values(name=name, password_hash=password_hash, role=role, active=True, created_at=now)
            .returning(User.id)
        ).scalar_one()
        return uid

    def change(self, uid: int, values: dict[str, Any]) -> None:
        self.conn.execute(update(User).where(User.id == uid).values(**values))

    def add_sites(self, uid: int, site_ids: list[int]) -> None:
        for sid in site_ids:
            self.conn.execute(insert(UserSite).values(user_id=uid, site_id=sid))

    def clear_sites(self, uid: int) -> None:
        self.conn.execute(delete(UserSite).where(UserSite.user_id == uid))

    def person(self, uid: int, via: str, csrf: str = "") -> Person | None:
        row = self.conn.execute(select(User.name, User.role, User.active).where(User.id == uid)).first()
        if row is None or not row.active:
            return None
        slugs = self.conn.execute(
            select(Site.slug).join(UserSite, UserSite.site_id == Site.id).where(UserSite.user_id == uid)
        ).scalars()
        return Person(uid, row.name, row.role, frozenset(slugs), via, csrf)

    def login(self, name: str) -> tuple[int, str, bool] | None:
        row = self.conn.execute(
            select(User.id, User.password_hash, User.active).where(User.name == name)
        ).first()
        return None if row is None else (row.id, row.password_hash, row.active)

    def listing(self) -> list[dict[str, Any]]:
        users = self.conn.execute(
            select(User.id, User.name, User.role, User.active).order_by(User.name)
        ).all()
        sites = self.conn.execute(
            select(UserSite.user_id, Site.slug).join(Site, Site.id == UserSite.site_id)
        ).all()
        by_user: dict[int, list[str]] = {}
        for uid, slug in sites:
            by_user.setdefault(uid, []).append(slug)
        return [
            {"name": u.name, "role": u.role, "active": u.active, "sites": sorted(by_user.get(u.id, []))}
            for u in users
        ]

    def empty(self) -> bool:
        return self.conn.execute(select(User.id).limit(1)).first() is None


class SqlSessions:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def start(self, sid: str, uid: int, csrf: str, now: float, expires_at: float) -> None:
        self.conn.execute(delete(AuthSession).where(AuthSession.expires_at < now))
        self.conn.execute(
            insert(AuthSession).values(id=sid, user_id=uid, csrf=csrf, created_at=now, expires_at=expires_at)
        )

    def find(self, sid: str) -> tuple[int, str, float] | None:
        row = self.conn.execute(
            select(AuthSession.user_id, AuthSession.csrf, AuthSession.expires_at).where(AuthSession.id == sid)
        ).first()
        return None if row is None else (row.user_id, row.csrf, row.expires_at)

    def end(self, sid: str) -> None:
        self.conn.execute(delete(AuthSession).where(AuthSession.id == sid))

    def end_all(self, uid: int) -> None:
        self.conn.execute(delete(AuthSession).where(AuthSession.user_id == uid))


class SqlTokens:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, uid: int, name: str, token_hash: str, prefix: str, now: float) -> None:
        self.conn.execute(
            insert(ApiToken).values(
                user_id=uid, name=name, token_hash=token_hash, prefix=prefix, created_at=now, revoked=False
            )
        )

    def find(self, token_hash: str) -> tuple[int, int, float | None] | None:
        row = self.conn.execute(
            select(ApiToken.id, ApiToken.user_id, ApiToken.last_used_at).where(
                ApiToken.token_hash == token_hash, ApiToken.revoked.is_(False)
            )
        ).first()
        return None if row is None else (row.id, row.user_id, row.last_used_at)

    def touch(self, token_id: int, now: float) -> None:
        self.conn.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))

    def listing(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(
                ApiToken.id,
                User.name.label("user"),
                ApiToken.name,
                ApiToken.prefix,
                ApiToken.created_at,
                ApiToken.last_used_at,
                ApiToken.revoked,
            )
            .join(User, User.id == ApiToken.user_id)
            .order_by(ApiToken.id)
        ).all()
        return [dict(r._mapping) for r in rows]

    def revoke(self, token_id: int) -> bool:
        res = self.conn.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked=True))
        return res.rowcount == 1
