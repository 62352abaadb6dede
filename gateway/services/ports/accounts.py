# The accounts repository ports: people (and the sites they act on), browser sessions, API tokens.
from __future__ import annotations

from typing import Any, Protocol

from gateway.domain.roles import Person


class People(Protocol):
    def id_of(self, name: str) -> int | None: ...

    def add(self, name: str, password_hash: str, role: str, now: float) -> int:
        """A new active person; returns their id."""
        ...

    def change(self, uid: int, values: dict[str, Any]) -> None:
        """Set columns (role, active, password_hash) of person `uid`."""
        ...

    def add_sites(self, uid: int, site_ids: list[int]) -> None: ...

    def clear_sites(self, uid: int) -> None: ...

    def person(self, uid: int, via: str, csrf: str = "") -> Person | None:
        """The active person `uid` with their role and sites; None when there is none or not active."""
        ...

    def login(self, name: str) -> tuple[int, str, bool] | None:
        """(id, password hash, active) of the person called `name`."""
        ...

    def listing(self) -> list[dict[str, Any]]:
        """Every person by name: name, role, active, and their sorted site slugs."""
        ...

    def empty(self) -> bool: ...


class Sessions(Protocol):
    def start(self, sid: str, uid: int, csrf: str, now: float, expires_at: float) -> None:
        """Store a session (its id is the cookie's digest), dropping every session expired at `now`."""
        ...

    def find(self, sid: str) -> tuple[int, str, float] | None:
        """(user id, csrf token, expiry) of a stored session."""
        ...

    def end(self, sid: str) -> None: ...

    def end_all(self, uid: int) -> None:
        """End every session of person `uid`."""
        ...


class Tokens(Protocol):
    def add(self, uid: int, name: str, token_hash: str, prefix: str, now: float) -> None: ...

    def find(self, token_hash: str) -> tuple[int, int, float | None] | None:
        """(token id, user id, last used) of an unrevoked token."""
        ...

    def touch(self, token_id: int, now: float) -> None: ...

    def listing(self) -> list[dict[str, Any]]:
        """Every token (id, user, name, prefix, created_at, last_used_at, revoked), oldest first."""
        ...

    def revoke(self, token_id: int) -> bool:
        """False: there is no such token."""
        ...
