# The auth layer: people with roles and sites, browser sessions, API tokens, FastAPI dependencies.
from __future__ import annotations

from gateway.auth.deps import (
    Forbidden,
    NotAuthenticated,
    at_least,
    csrf_ok,
    current_user,
    optional_user,
    require,
    require_site,
)
from gateway.auth.roles import ROLES, Person
from gateway.auth.store import (
    authenticate,
    create_session,
    create_user,
    end_session,
    ensure_owner,
    issue_api_token,
    list_tokens,
    list_users,
    revoke_token,
    set_password,
    update_user,
)

__all__ = [
    "ROLES",
    "Forbidden",
    "NotAuthenticated",
    "Person",
    "at_least",
    "authenticate",
    "create_session",
    "create_user",
    "csrf_ok",
    "current_user",
    "end_session",
    "ensure_owner",
    "issue_api_token",
    "list_tokens",
    "list_users",
    "optional_user",
    "require",
    "require_site",
    "revoke_token",
    "set_password",
    "update_user",
]
