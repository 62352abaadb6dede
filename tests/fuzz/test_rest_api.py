# The REST API fuzzed from its own OpenAPI with schemathesis against the real gateway: no 5xx, every error
# in the one shape, and a refused request (4xx) changes no table.
from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.conftest import GatewayProc
from tests.faults.harness import record
from tests.fuzz.state import digest

FULL = os.environ.get("HX_CHAOS", "") == "full"
PER_OPERATION = 40 if FULL else 3


def _one_error_shape(resp: Any) -> str | None:
    """What is wrong with an error answer's body, or None (gateway/entrypoints/http/app.py error_body)."""
    try:
        body = json.loads(resp.content)
    except ValueError:
        return f"not JSON: {resp.content[:120]!r}"
    err = body.get("error") if isinstance(body, dict) else None
    if not (
        isinstance(body, dict)
        and set(body) == {"error"}
        and isinstance(err, dict)
        and set(err) == {"code", "message", "details"}
        and isinstance(err["code"], str)
        and isinstance(err["message"], str)
        and isinstance(err["details"], dict)
    ):
        return f"not the one error shape: {str(body)[:200]}"
    return None


STATUS_WAIT_S = 0.8  # longer than the status buffer's idle wait (250 ms) with room for the write


def _settled(db: Path, path: str) -> dict[str, str]:
    """The tables once a valid request's effects have landed. A fleet command (revoke, set_mode, ...)
    reaches the database a second time asynchronously, over MQTT (e.g. the retained "offline" a revoke
    publishes comes back as a status, which the gateway writes in a batch up to STATUS_WAIT_S later,
    services/device_status.py): wait until two reads that far apart agree (at most 8 tries)."""
    now = digest(db)
    if not path.startswith("/api/fleet"):
        return now
    for _ in range(8):
        time.sleep(STATUS_WAIT_S)
        again = digest(db)
        if again == now:
            return now
        now = again
    return now


def test_rest_api_fuzzed_from_its_openapi(
    mosquitto: Mosquitto, gateway_factory: Callable[..., GatewayProc]
) -> None:
    # The inbound webhook on (it answers 503 "off" otherwise, on purpose), so its parsing is fuzzed too.
    gw = gateway_factory(mosquitto.url, env={"WEBHOOK_SECRET": "fuzz-webhook-secret-0123456789abcdef"})
    assert gw.api("POST", "/api/sites", json={"slug": "s1", "name": "Site One"}).status_code == 201
    r = gw.api(
        "POST",
        "/api/orders",
        json={
            "orders": [
                {
                    "code": "FZ-REST",
                    "title": "fuzz",
                    "quantity": 3,
                    "site": None,
                    "valid_from": None,
                    "valid_until": None,
                }
            ]
        },
    )
    assert r.status_code == 201
    schema = schemathesis.openapi.from_url(gw.http + "/openapi.json")
    headers = {"Authorization": f"Bearer {gw.token}"}
    statuses: Counter[int] = Counter()
    problems: list[str] = []
    state = [digest(gw.db_path)]
    ops = [res.ok() for res in schema.get_all_operations()]
    assert len(ops) > 20, f"only {len(ops)} operations in the OpenAPI"

    for op in ops:
        # Both valid and invalid requests: schemathesis's negative mode breaks the schema on purpose.
        strategy = op.as_strategy(generation_mode=GenerationMode.NEGATIVE) | op.as_strategy()

        @settings(
            max_examples=PER_OPERATION,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def one(case: Any) -> None:
            before = state[0]
            resp = case.call(base_url=gw.http, headers=headers, timeout=30)
            statuses[resp.status_code] += 1
            where = f"{case.method} {case.formatted_path}"
            if resp.status_code >= 500:
                problems.append(f"{where} -> {resp.status_code}: {resp.content[:200]!r}")
                return
            if resp.status_code >= 400:
                if case.path.startswith("/api"):
                    why = _one_error_shape(resp)
                    if why:
                        problems.append(f"{where} -> {resp.status_code}: {why}")
                after = digest(gw.db_path)
                if after != before:
                    problems.append(
                        f"{where} -> {resp.status_code} changed the database: {before} -> {after}"
                    )
            else:
                state[0] = _settled(
                    gw.db_path, case.path
                )  # a valid request may change things: the new baseline
            case.validate_response(resp, checks=[not_a_server_error])

        one()
    record(
        "fuzz_rest",
        operations=len(ops),
        requests=sum(statuses.values()),
        statuses=dict(sorted(statuses.items())),
        problems=len(problems),
    )
    assert gw.proc is not None and gw.proc.poll() is None
    assert not problems, "\n".join(problems[:30])
