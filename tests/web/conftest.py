# Browser-test fixtures: Debian's Chromium driven by Playwright against a real gateway and broker.
from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from sqlalchemy import Engine

from gateway.adapters.brokers.mosquitto import Mosquitto
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.services.accounts import create_user
from tests.conftest import GatewayProc

CHROMIUM = "/usr/bin/chromium"
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
OWNER_PASSWORD = "owner-secret-1"
PASSWORD = "secret-pass-1"
# Flags from the machine notes: no sandbox as root, and no background calls to the (closed) internet.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        # Not a skip: the set-up step (tools/system_deps.sh) installs it; its absence is a broken install.
        raise pytest.UsageError(f"{CHROMIUM} is missing: run `make setup-test` (apt-get install chromium)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
    yield b
    b.close()


@dataclass
class Console:
    gw: GatewayProc
    engine: Engine
    broker: Mosquitto
    contexts: list[BrowserContext]
    browser: Browser

    @property
    def http(self) -> str:
        return self.gw.http

    def page(self, width: int = 1280, height: int = 900, lang: str = "en-US") -> Page:
        ctx = self.browser.new_context(
            base_url=self.gw.http,
            viewport={"width": width, "height": height},
            locale=lang,
            extra_http_headers={"Accept-Language": lang},
            accept_downloads=True,
        )
        ctx.set_default_timeout(15_000)
        self.contexts.append(ctx)
        return ctx.new_page()

    def sign_in(self, page: Page, name: str, password: str = PASSWORD) -> None:
        page.goto("/console/login")
        page.get_by_label(re.compile("^(Name|用户名)$")).fill(name)
        page.get_by_label(re.compile("^(Password|密码)$")).fill(password)
        page.get_by_role("button", name=re.compile("^(Sign in|登录)$")).click()
        page.wait_for_url(re.compile(r"/console/(live|redeem)"))

    def as_user(self, name: str, width: int = 1280, password: str = PASSWORD) -> Page:
        page = self.page(width)
        self.sign_in(page, name, password)
        return page


@pytest.fixture
def console(
    browser: Browser, mosquitto: Mosquitto, gateway_factory: Callable[..., GatewayProc]
) -> Iterator[Console]:
    """A gateway (no demo data) with sites s1 and s2, a few orders, and one person per role:
    owner (bootstrapped from OWNER_PASSWORD), manager@s1, super@s1, verifier@s1, verifier2@s2."""
    gw = gateway_factory(mosquitto.url, env={"OWNER_PASSWORD": OWNER_PASSWORD, "AUTO_REGISTER_SITE": "s1"})
    for slug, name in (("s1", "Lakeside Park"), ("s2", "Old Town Tours")):
        assert gw.api("POST", "/api/sites", json={"slug": slug, "name": name}).status_code == 201
    orders = [
        {"code": "HX-TEST-FAMILY-5", "title": "Family Day Pass", "quantity": 5, "site": "s1"},
        {"code": "HX-TEST-SINGLE", "title": "Single Entry", "quantity": 1, "site": "s1"},
        {"code": "HX-TEST-ANYWHERE", "title": "City Voucher", "quantity": 3, "site": None},
        {"code": "HX-TEST-TOUR-S2", "title": "Old Town Walk", "quantity": 2, "site": "s2"},
        {
            "code": "HX-TEST-VOUCHER",
            "title": "Cash Voucher 100",
            "kind": "value",
            "quantity": 10000,
            "site": "s1",
        },
    ]
    assert gw.api("POST", "/api/orders", json={"orders": orders}).status_code == 201
    engine = make_engine(f"sqlite:///{gw.db_path}")
    create_user(SqlDatabase(engine), "manager", PASSWORD, "manager", ["s1"])
    create_user(SqlDatabase(engine), "super", PASSWORD, "supervisor", ["s1"])
    create_user(SqlDatabase(engine), "verifier", PASSWORD, "verifier", ["s1"])
    create_user(SqlDatabase(engine), "verifier2", PASSWORD, "verifier", ["s2"])
    c = Console(gw, engine, mosquitto, [], browser)
    yield c
    for ctx in c.contexts:  # close pages first: an open live stream would hold the server's shutdown
        ctx.close()
    engine.dispose()


class Shot(Protocol):
    def __call__(self, page: Page, name: str, *, full_page: bool = False) -> Path: ...


@pytest.fixture
def shot(tmp_path: Path) -> Shot:
    """Screenshot helper: into docs/img/ when HX_SCREENSHOTS=1 (to refresh the docs), else tmp_path."""
    out = DOCS_IMG if os.environ.get("HX_SCREENSHOTS") == "1" else tmp_path

    def take(page: Page, name: str, *, full_page: bool = False) -> Path:
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"console-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


def no_horizontal_overflow(page: Page) -> bool:
    overflow: bool = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    return not overflow


__all__ = ["Console", "Shot", "no_horizontal_overflow"]
