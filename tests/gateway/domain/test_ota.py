# Over-the-air rules (gateway/domain/ota.py): what a bundle must be, the keys, and how statuses move a rollout.
from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain import ota

MASTER = b"m" * 32
FILES = {"hx/__init__.mpy": b"M\x06init", "hx/app.mpy": b"M\x06app" * 100}


def bundle(files: dict[str, bytes] = FILES, version: str = "1.2.3", key: bytes = MASTER) -> dict[str, bytes]:
    m = {
        "version": version,
        "files": {p: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for p, d in files.items()},
    }
    raw = json.dumps(m, sort_keys=True).encode()
    return {"manifest.json": raw, "manifest.sig": ota.sign(key, raw).encode(), **files}


def test_a_signed_complete_bundle_is_accepted() -> None:
    m = ota.check_bundle(bundle(), MASTER)
    assert (m.version, set(m.files), m.total) == ("1.2.3", set(FILES), sum(map(len, FILES.values())))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda b: b.update({"hx/app.mpy": b"tampered"}), "differs from the manifest"),
        (lambda b: b.pop("hx/app.mpy"), "missing from the archive"),
        (lambda b: b.update({"hx/extra.mpy": b"x"}), "not in the manifest"),
        (lambda b: b.update({"manifest.sig": b"00" * 32}), "not signed"),
        (lambda b: b.pop("manifest.sig"), "manifest.sig"),
    ],
)
def test_a_changed_bundle_is_refused(change: object, why: str) -> None:
    b = bundle()
    change(b)  # type: ignore[operator]
    with pytest.raises(ota.BundleError, match=why):
        ota.check_bundle(b, MASTER)


@pytest.mark.parametrize(
    "files",
    [
        {"boot.py": b"x"},
        {"hx/../main.py": b"x"},
        {"hx/app.mpy": b"no init"},
        {"hx/__init__.mpy": b"", "hx/a.txt": b""},
    ],
)
def test_files_outside_the_hx_package_are_refused(files: dict[str, bytes]) -> None:
    with pytest.raises(ota.BundleError):
        ota.check_bundle(bundle(files), MASTER)


def test_signed_with_another_key_is_refused_and_device_keys_differ() -> None:
    with pytest.raises(ota.BundleError, match="not signed"):
        ota.check_bundle(bundle(key=b"x" * 32), MASTER)
    a, b = ota.device_key(MASTER, "gate-1"), ota.device_key(MASTER, "gate-2")
    assert len(a) == 32 and a != b and MASTER not in (a, b)


def test_progress_from_statuses() -> None:
    p = ota.progress
    assert p(
        "pending", "B", "A", {"state": "downloading", "ver": "B", "done": 10, "total": 99}
    ) == ota.Progress("downloading", 10, 99)
    assert p("downloading", "B", "A", {"state": "installed", "ver": "B"}) == ota.Progress("installed")
    assert p("installed", "B", "B", {"state": "trial", "ver": "B"}) == ota.Progress("trial")
    assert p("trial", "B", "B", {"state": "kept", "ver": "B"}) == ota.Progress("confirmed")
    assert (
        p("installed", "C", "B", {"state": "rolled_back", "ver": "C", "why": "import"}).state == "rolled_back"
    )
    assert p("downloading", "C", "B", {"state": "failed", "ver": "C", "why": "hash"}) == ota.Progress(
        "failed", detail="hash"
    )
    # Another version's report, no report, or a finished rollout: nothing changes.
    assert p("installed", "C", "B", {"state": "rolled_back", "ver": "X"}) is None
    assert p("pending", "C", "B", None) is None
    assert p("rolled_back", "C", "C", {"state": "kept", "ver": "C"}) is None
    assert p("confirmed", "B", "A", {"state": "failed", "ver": "B"}) is None


def test_offers_go_to_devices_not_busy_with_the_update() -> None:
    assert ota.wants_offer("pending", None)
    assert ota.wants_offer("downloading", {"state": "paused", "ver": "B"})
    assert not ota.wants_offer("downloading", {"state": "downloading", "ver": "B"})
    assert not ota.wants_offer("rolled_back", None), "a rolled-back device is never offered C again"
    assert not ota.wants_offer("installed", None)


# Review: statuses arrive duplicated and out of order (QoS 1 redelivery, a retained status read again, a
# heartbeat queued before a later report). A roll-out moves forward only: a late "downloading" never
# undoes "installed" or "trial", and a finished one never changes again.
_RANK = {"pending": 0, "downloading": 1, "installed": 2, "trial": 3}
_KINDS = st.sampled_from(
    ["downloading", "paused", "installed", "trial", "kept", "failed", "rolled_back", None]
)


@given(st.lists(st.tuples(st.sampled_from(["A", "C"]), _KINDS, st.sampled_from(["C", "X"])), max_size=12))
def test_a_rollout_never_moves_backwards(reports: list[tuple[str, str | None, str]]) -> None:
    state = "downloading"  # a chunk was served: this roll-out's own reports may come now
    for fw, kind, ver in reports:
        p = ota.progress(state, "C", fw, {"state": kind, "ver": ver, "done": 1, "total": 2} if kind else None)
        if p is None:
            continue
        if state in ota.TERMINAL:
            pytest.fail(f"{state} changed to {p.state}")
        if p.state not in ota.TERMINAL:
            assert _RANK[p.state] >= _RANK[state], f"{state} went back to {p.state} on {fw}/{kind}/{ver}"
        state = p.state


def test_a_failure_reported_before_this_rollout_served_anything_is_stale() -> None:
    # C failed once (a flash error); the device lost its link but did not reboot, so its status still
    # says failed C. C is rolled out again: that old report must not fail the new roll-out unattempted.
    stale = {"state": "failed", "ver": "C", "why": "OSError(28)"}
    assert ota.progress("pending", "C", "A", stale) is None
    assert ota.wants_offer("pending", stale), "the device is offered C again"
