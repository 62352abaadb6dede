# The fault suite's load and its proof: resending devices under open-loop load, and the four invariants.
#
# Why not tools/loadgen: its devices send each scan once and count what comes back (a benchmark); under
# faults a device must do what the firmware does — keep every unanswered scan and send it again under the
# same sid until a final verdict arrives — or every kill would "lose" scans the product never lost.
from __future__ import annotations

import collections
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

TRANSIENT = {"INTERNAL", "RATE_LIMITED", "UNKNOWN_DEVICE"}  # contract/topics.json → transient


@dataclass
class Pending:
    code: str
    seq: int
    first: float
    last: float
    sends: int = 1


class ResendingDevice:
    """One scanner on its own MQTT connection with a firmware-like outbox (resend until final)."""

    def __init__(self, host: str, port: int, device: str, resend_s: float = 5.0, window: int = 4) -> None:
        self.device = device
        self.resend_s = resend_s  # the firmware's retry_ms (5 s)
        self.window = window  # the firmware's inflight (4)
        self.lock = threading.Lock()
        self.outbox: dict[str, Pending] = {}
        self.finals: dict[str, list[tuple[bool, str]]] = collections.defaultdict(list)
        self.transients = 0
        self.order: list[str] = []  # sids in the order they were first sent
        self.connects = 0
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device, clean_session=True)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.reconnect_delay_set(0.2, 1)
        self.c.connect_async(host, port, keepalive=10)
        self.c.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        client.subscribe(f"hx/v1/dev/{self.device}/verdict", qos=1)
        with self.lock:
            self.connects += 1
            # Like the firmware: a reconnect sends every waiting scan again at once.
            for p in self.outbox.values():
                p.last = 0.0

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            doc = json.loads(msg.payload)
            sid, ok, reason = str(doc["sid"]), bool(doc["ok"]), str(doc["reason"])
        except (ValueError, KeyError, TypeError):
            return
        with self.lock:
            if doc.get("retry") or reason in TRANSIENT:
                self.transients += 1
                p = self.outbox.get(sid)
                if p is not None:
                    p.last = time.monotonic() - self.resend_s + 1.0  # back off one second
                return
            self.finals[sid].append((ok, reason))
            self.outbox.pop(sid, None)

    def _publish(self, sid: str, code: str) -> None:
        body = {"v": 1, "sid": sid, "code": code, "qty": 1, "dir": "in", "at": int(time.time())}
        self.c.publish(f"hx/v1/dev/{self.device}/scan", json.dumps(body), qos=1)

    def scan(self, sid: str, code: str) -> None:
        now = time.monotonic()
        with self.lock:
            self.outbox[sid] = Pending(code, len(self.order), now, now)
            self.order.append(sid)
        self._publish(sid, code)

    def resend_due(self) -> int:
        """Send again what waited `resend_s` without a final verdict: like the firmware's outbox, only
        among the oldest `window` waiting scans (its `inflight`), so a backlog drains in order."""
        now = time.monotonic()
        with self.lock:
            oldest = sorted(self.outbox.items(), key=lambda kv: kv[1].seq)[: self.window]
            due = [(s, p) for s, p in oldest if now - p.last >= self.resend_s]
            for _, p in due:
                p.last = now
                p.sends += 1
        if self.c.is_connected():
            for s, p in due:
                self._publish(s, p.code)
        return len(due)

    def waiting(self) -> int:
        with self.lock:
            return len(self.outbox)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


@dataclass
class LoadResult:
    sent: int = 0
    resends: int = 0
    transients: int = 0
    reconnects: int = 0
    drain_s: float = 0.0
    events: list[str] = field(default_factory=list)


class OpenLoad:
    """Scans at a fixed rate from a background thread (open loop: faults never slow the offered load).

    Bounded: it stops after `duration` seconds by itself; `drain()` then waits (bounded) for every scan's
    final verdict while the devices keep resending.
    """

    def __init__(
        self,
        host: str,
        port: int,
        codes: list[str],
        *,
        devices: int = 4,
        rate: float = 40.0,
        tag: str = "f",
        seed: int = 14,
    ) -> None:
        self.codes = codes
        self.rate = rate
        self.rng = random.Random(seed)
        self.devs = [ResendingDevice(host, port, f"fl-{tag}-{i}") for i in range(devices)]
        self.tag = tag
        self.result = LoadResult()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        deadline = time.monotonic() + 15
        while not all(d.c.is_connected() for d in self.devs):
            if time.monotonic() > deadline:
                raise AssertionError("load devices did not connect to the broker")
            time.sleep(0.05)

    def start(self, duration: float) -> OpenLoad:
        self._thread = threading.Thread(target=self._run, args=(duration,), daemon=True)
        self._thread.start()
        return self

    def _run(self, duration: float) -> None:
        t0 = time.monotonic()
        n = 0
        while not self._stop.is_set() and time.monotonic() - t0 < duration:
            due = t0 + n / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            d = self.devs[n % len(self.devs)]
            d.scan(f"{self.tag}{n:x}", self.rng.choice(self.codes))
            n += 1
            if n % 5 == 0:
                self.result.resends += sum(x.resend_due() for x in self.devs)
        self.result.sent = n

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def drain(self, timeout: float = 180.0) -> LoadResult:
        """Stop offering new scans; resend until every scan has a final verdict (or `timeout`)."""
        if self._thread is not None:
            self._thread.join()
        t0 = time.monotonic()
        while any(d.waiting() for d in self.devs) and time.monotonic() - t0 < timeout:
            self.result.resends += sum(d.resend_due() for d in self.devs)
            time.sleep(0.05)
        self.result.drain_s = round(time.monotonic() - t0, 1)
        self.result.transients = sum(d.transients for d in self.devs)
        self.result.reconnects = sum(max(0, d.connects - 1) for d in self.devs)
        return self.result

    def close(self) -> None:
        self._stop.set()
        for d in self.devs:
            d.close()


@dataclass
class Proof:
    """The four invariants, each a count that must be 0 (ledger_mismatch: rows that differ)."""

    sent: int
    answered: int
    lost: int
    duplicate_verdicts: int
    double_redemptions: int
    ledger_mismatch: int
    details: dict[str, Any]

    def assert_clean(self) -> None:
        bad = {
            k: v
            for k, v in (
                ("lost", self.lost),
                ("duplicate_verdicts", self.duplicate_verdicts),
                ("double_redemptions", self.double_redemptions),
                ("ledger_mismatch", self.ledger_mismatch),
            )
            if v
        }
        assert not bad, f"fault run broke invariants {bad}: {json.dumps(self.details)[:3000]}"


def prove(load: OpenLoad, db_url: str) -> Proof:
    """Compare what the devices were told with what the ledger holds (read straight from the database).

    - lost: a scan without any final verdict;
    - duplicate verdicts: a scan told two different final answers, or decided twice in the ledger;
    - double redemptions: an order with more units used than its quantity, or more OK verdicts than
      units the ledger shows used;
    - ledger = verdicts: every (device, sid, ok, reason) a device was told is exactly one ledger row.
    """
    told: dict[tuple[str, str], tuple[bool, str]] = {}
    lost: list[str] = []
    contradicted: list[str] = []
    sent = 0
    codes: dict[tuple[str, str], str] = {}
    for d in load.devs:
        with d.lock:
            sent += len(d.order)
            for sid in d.order:
                answers = d.finals.get(sid) or []
                if not answers:
                    lost.append(f"{d.device}/{sid}")
                    continue
                if len(set(answers)) > 1:
                    contradicted.append(f"{d.device}/{sid}: {answers}")
                told[(d.device, sid)] = answers[0]
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as c:
            devs = [d.device for d in load.devs]
            rows = c.execute(
                sa.text(
                    "SELECT device, scan_id, ok, reason, code FROM redemptions WHERE device IN :d"
                ).bindparams(sa.bindparam("d", expanding=True)),
                {"d": devs},
            ).all()
            orders = c.execute(
                sa.text("SELECT code, quantity, used FROM orders WHERE code IN :c").bindparams(
                    sa.bindparam("c", expanding=True)
                ),
                {"c": list(load.codes)},
            ).all()
    finally:
        engine.dispose()
    per_key = collections.Counter((r.device, r.scan_id) for r in rows)
    decided_twice = [f"{k[0]}/{k[1]}" for k, n in per_key.items() if n > 1]
    ledger = {(r.device, r.scan_id): (bool(r.ok), str(r.reason)) for r in rows}
    for r in rows:
        codes[(r.device, r.scan_id)] = r.code
    mismatch = sorted(
        f"{k[0]}/{k[1]}: told {told.get(k)} ledger {ledger.get(k)}"
        for k in set(told) | set(ledger)
        if told.get(k) != ledger.get(k)
    )
    ok_told = collections.Counter(codes.get(k) for k, v in told.items() if v[0])
    over = [
        f"{o.code}: quantity {o.quantity} used {o.used} ok verdicts {ok_told.get(o.code, 0)}"
        for o in orders
        if o.used > o.quantity or ok_told.get(o.code, 0) != o.used
    ]
    return Proof(
        sent=sent,
        answered=len(told),
        lost=len(lost),
        duplicate_verdicts=len(contradicted) + len(decided_twice),
        double_redemptions=len(over),
        ledger_mismatch=len(mismatch),
        details={
            "lost": lost[:20],
            "contradicted": contradicted[:20],
            "decided_twice": decided_twice[:20],
            "over": over[:20],
            "mismatch": mismatch[:20],
            "ledger_rows": len(rows),
            "ok": sum(1 for v in told.values() if v[0]),
        },
    )


def record(name: str, **figures: Any) -> None:
    """One line of figures per fault run, appended to $HX_CHAOS_REPORT (docs/reliability.md takes them)."""
    import os

    line = json.dumps({"test": name, **figures}, default=str)
    print(line)
    path = os.environ.get("HX_CHAOS_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")
