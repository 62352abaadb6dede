# The owner's page: people, their roles and sites, password resets and API tokens.
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from gateway.domain.errors import HexiaoError
from gateway.domain.roles import ROLES, Person
from gateway.entrypoints.console.guard import CONSOLE, rt_of
from gateway.entrypoints.console.i18n import translator
from gateway.entrypoints.console.render import lang_of, page
from gateway.entrypoints.http.auth import caller
from gateway.services import accounts as store
from gateway.services.orders import list_sites

router = APIRouter()


def _render(request: Request, person: Person, status: int = 200, **ctx: Any) -> Response:
    db = rt_of(request).db
    ctx.setdefault("message", "")
    ctx.setdefault("error", "")
    ctx.setdefault("token", "")
    return page(
        request,
        "users.html",
        person,
        status_code=status,
        users=store.list_users(db),
        tokens=store.list_tokens(db),
        sites=[s["slug"] for s in list_sites(db)],
        roles=ROLES,
        **ctx,
    )


@router.get("/console/users", include_in_schema=False)
def users(request: Request, saved: int = 0, person: Person = Depends(caller("owner", CONSOLE))) -> Response:
    t = translator(lang_of(request))
    return _render(request, person, message=t("Saved.") if saved else "")


@router.post("/console/users", include_in_schema=False)
async def users_post(request: Request, person: Person = Depends(caller("owner", CONSOLE))) -> Response:
    form = await request.form()
    db = rt_of(request).db
    action = str(form.get("action", ""))
    name = str(form.get("name", "")).strip()
    sites = [str(s) for s in form.getlist("sites")]
    try:
        if action == "create":
            store.create_user(db, name, str(form.get("password", "")), str(form.get("role", "")), sites)
        elif action == "update":
            if name == person.name and str(form.get("role")) != "owner":
                raise HexiaoError("you cannot demote yourself")
            store.update_user(
                db,
                name,
                role=str(form.get("role", "")),
                sites=sites,
                active=form.get("active") == "on" or name == person.name,
            )
        elif action == "password":
            store.set_password(db, name, str(form.get("password", "")))
        elif action == "token":
            token = store.issue_api_token(db, name, str(form.get("token_name", "")).strip() or "integration")
            return _render(request, person, token=token)
        elif action == "revoke":
            token_id = str(form.get("token_id", "")).strip()
            if not (token_id.isascii() and token_id.isdigit() and len(token_id) <= 15):
                raise HexiaoError("unknown token")
            store.revoke_token(db, int(token_id))
        else:
            raise HexiaoError("unknown action")
    except HexiaoError as err:
        return _render(request, person, 422, error=err.message)
    except ValueError as err:
        return _render(request, person, 422, error=str(err))
    return RedirectResponse("/console/users?saved=1", status_code=303)
