# Hand-made ledger rows for the repository tests: sites, orders and redemptions inserted as they are stored.
from __future__ import annotations

from itertools import count
from typing import Any

from sqlalchemy import Engine, insert

from gateway.adapters.db.models import Order, Redemption, Site

_n = count(1)


def site(e: Engine, slug: str, tz: str = "UTC", **kw: Any) -> int:
    with e.begin() as c:
        row = {"slug": slug, "name": slug, "timezone": tz, "created_at": 0.0, **kw}
        return int(c.execute(insert(Site).values(**row)).inserted_primary_key[0])


def order(e: Engine, code: str, site_id: int | None = None, **kw: Any) -> int:
    return orders(e, [code], site_id, **kw)[0]


def orders(e: Engine, codes: list[str], site_id: int | None = None, **kw: Any) -> list[int]:
    """Orders of `codes` in one transaction (a commit per row would cost an fsync each); their ids."""
    with e.begin() as c:
        return [
            int(c.execute(insert(Order).values(**_order(code, site_id, kw))).inserted_primary_key[0])
            for code in codes
        ]


def _order(code: str, site_id: int | None, kw: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": code,
        "title": f"title {code}",
        "quantity": 3,
        "site_id": site_id,
        "created_at": 0.0,
        **kw,
    }


def redemption(e: Engine, order_id: int | None, at: float, site_id: int | None = None, **kw: Any) -> int:
    n = next(_n)
    row = {
        "idem_key": f"d:t/{n}",
        "device": "t",
        "scan_id": str(n),
        "site_id": site_id,
        "gate": "g",
        "order_id": order_id,
        "code": "c",
        "qty": 1,
        "ok": True,
        "reason": "OK",
        "server_time": at,
        "verdict": "{}",
        "op": "redeem",
        **kw,
    }
    with e.begin() as c:
        return int(c.execute(insert(Redemption).values(**row)).inserted_primary_key[0])
