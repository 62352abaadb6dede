# Helpers for the trust regression tests: a migrated ledger, orders written directly, one-call scans.
from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, insert, select

from gateway.adapters.db.engine import make_engine, migrate, writer
from gateway.adapters.db.models import Audit, Order, Redemption, Site
from gateway.adapters.db.repositories.ledger import SqlLedger
from gateway.adapters.mqtt.contract import Verdict
from gateway.adapters.mqtt.oled import render
from gateway.services.ledger import Place, Request, apply_batch, idem_key

SITE_TZ = "Asia/Shanghai"
TZ = ZoneInfo(SITE_TZ)


def at(text: str, tz: ZoneInfo = TZ) -> float:
    """`2026-11-23 10:00` on the site's wall clock, as Unix seconds."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=tz).timestamp()


def ledger(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Engine:
    url = f"sqlite:///{tmp_path / 'trust.db'}" if kind == "sqlite" else request.getfixturevalue("pg_url")
    e = make_engine(url)
    migrate(e)
    return e


def add_site(e: Engine, slug: str = "zoo", tz: str = SITE_TZ, auto_checkout: str | None = None) -> int:
    with e.begin() as c:
        return int(
            c.execute(
                insert(Site)
                .values(
                    slug=slug,
                    name=slug,
                    timezone=tz,
                    auto_checkout=auto_checkout,
                    created_at=at("2026-11-01 00:00"),
                )
                .returning(Site.id)
            ).scalar_one()
        )


def add_order(e: Engine, code: str, quantity: int = 1, **fields: Any) -> None:
    values: dict[str, Any] = {
        "code": code,
        "title": code.title(),
        "quantity": quantity,
        "created_at": time.time(),
    }
    values.update(fields)
    with e.begin() as c:
        c.execute(insert(Order).values(**values))


def order(e: Engine, code: str) -> Any:
    with e.connect() as c:
        return c.execute(select(Order).where(Order.code == code)).one()


def place(site_id: int | None = None, gate: str = "G1", tz: ZoneInfo = TZ) -> Place:
    return Place(site_id, gate, tz)


def scan(
    e: Engine,
    now: float,
    sid: str,
    code: str = "",
    *,
    device: str = "d1",
    where: Place | None = None,
    **kw: Any,
) -> Verdict:
    """One request decided and committed on its own, like a one-scan batch of the service loop."""
    req = Request(device, sid, code, kw.pop("qty", 1), kw.pop("dir", "in"), None, **kw)
    with e.connect() as c, writer(c).begin():
        return apply_batch(SqlLedger(c), [(req, where or place())], now, render=render)[0]


def redemption_id(e: Engine, device: str, sid: str) -> int:
    with e.connect() as c:
        return int(
            c.execute(select(Redemption.id).where(Redemption.idem_key == idem_key(device, sid))).scalar_one()
        )


def audits(e: Engine, action: str) -> list[Any]:
    with e.connect() as c:
        return list(c.execute(select(Audit).where(Audit.action == action)).all())


def count_rows(e: Engine) -> int:
    with e.connect() as c:
        return len(c.execute(select(Redemption.id)).all())
