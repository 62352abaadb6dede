# Unit tests of hx.capture (the camera's capture policy, motion score, frame header, hints) and of the
# UI's camera screens, driven only by `now`.
import json

import hx.ui as U
from hx import capture as C
from hx.config import ConfigError, validate

import t


def test_button_burst_sends_at_fps_until_the_burst_ends():
    p = C.Policy("button", 5, 1000)
    t.true(not p.look_due(0), "a handheld never looks for motion")
    p.start("s-1", 0)
    sent = []
    for now in range(0, 1500, 10):
        if p.frame_due(now):
            p.sent(now)
            sent.append(now)
        if p.expired(now):
            break
    t.eq(sent, [0, 200, 400, 600, 800], "5 fps for 1 s")
    t.eq(p.state, C.REST)
    t.eq(p.n, 5)


def test_the_verdict_ends_the_attempt_and_only_its_own():
    p = C.Policy("button", 5, 5000)
    p.start("s-1", 0)
    t.true(not p.end("other", 100), "another sid does not end it")
    t.eq(p.state, C.BURST)
    t.true(p.end("s-1", 100))
    t.true(not p.frame_due(300), "no more frames after the verdict")
    t.true(not p.expired(9000), "an ended attempt does not also expire")


def test_motion_trigger_needs_a_baseline_then_a_change_then_rests():
    p = C.Policy("motion", 5, 1000, look_fps=2, level=12, rest_ms=1500)
    t.true(p.look_due(0))
    t.true(not p.looked(200, 0), "the first look only sets the baseline")
    t.true(not p.look_due(100), "looks at 2 fps")
    t.true(p.look_due(500))
    t.true(not p.looked(5, 500), "a still scene starts nothing")
    t.true(p.look_due(1000))
    t.true(p.looked(40, 1000), "a change starts an attempt")
    p.start("s-2", 1000)
    t.true(not p.look_due(1100), "no looking during a burst")
    p.end("s-2", 1200)
    t.true(not p.look_due(2000), "rests after an attempt")
    t.true(p.look_due(2700))
    t.true(not p.looked(90, 2700), "after a rest the scene it ended on is the new baseline")


def test_motion_score_of_gray_frames_and_of_jpeg_sizes():
    a = bytes(range(256)) * 300
    score, sample = C.motion(None, a, "gray")
    t.eq(score, 0)
    same, _ = C.motion(sample, a, "gray")
    t.eq(same, 0)
    b = bytes((x + 50) % 256 for x in a)
    moved, _ = C.motion(sample, b, "gray")
    t.true(moved >= 12, "a changed scene scores: %d" % moved)
    score, size = C.motion(None, b"x" * 4000, "jpeg")
    t.eq((score, size), (0, 4000))
    t.eq(C.motion(4000, b"x" * 4100, "jpeg")[0], 6)
    t.true(C.motion(4000, b"x" * 5200, "jpeg")[0] >= 12, "20 % more detail")


def test_frame_head_is_one_json_line_of_the_contract():
    h = C.frame_head("k3Xq9Z-1a-4", 2, "jpeg", 320, 240, 1, "in", 1795392000)
    t.true(h.endswith(b"\n") and h.count(b"\n") == 1)
    with open(t.CONTRACT + "/topics.json") as f:
        t.true(len(h) <= json.load(f)["max_frame_header"], "fits the contract's header limit")
    d = json.loads(h)
    t.eq(
        (d["v"], d["sid"], d["n"], d["fmt"], d["w"], d["h"], d["dir"]),
        (1, "k3Xq9Z-1a-4", 2, "jpeg", 320, 240, "in"),
    )


def test_the_contract_examples_match_what_the_board_sends_and_reads():
    with open(t.CONTRACT + "/examples/frame_header.json") as f:
        want = json.loads(f.read())
    got = json.loads(C.frame_head("k3Xq9Z-1a-4", 2, "jpeg", 640, 480, 1, "in", 1795392000))
    t.eq(got, want)
    with open(t.CONTRACT + "/examples/hint.json") as f:
        t.eq(C.read_hint(f.read()), ("k3Xq9Z-1a-4", "closer", "MOVE CLOSER", "code too small"))


def test_hints_are_read_or_refused():
    ok = b'{"v":1,"sid":"s-1","n":0,"hint":"closer","l1":"MOVE CLOSER","l2":"code too small"}'
    t.eq(C.read_hint(ok), ("s-1", "closer", "MOVE CLOSER", "code too small"))
    for bad in (b"nope", b"[]", b'{"v":2,"sid":"s","hint":"x","l1":"a","l2":"b"}', b'{"v":1,"sid":1}'):
        t.eq(C.read_hint(bad), None, bad)


def _ui():
    ui = U.UI("handheld", 5000, 3000, 0)
    ui.booted(0)
    ui.link(True, 0, 0)
    ui.camera = True
    return ui


def test_ok_at_ready_starts_a_camera_attempt_and_hints_change_its_lines():
    ui = _ui()
    t.eq(ui.button("ok", 10), [("look", None)])
    ui.looking("s-1", 20, 8000)
    t.eq((ui.state, ui.l1, ui.waiting), (U.CHECKING, "HOLD CODE", "s-1"))
    ui.hint("s-1", "MOVE CLOSER", "code too small", 500)
    t.eq((ui.l1, ui.l2), ("MOVE CLOSER", "code too small"))
    ui.hint("other", "TOO DARK", "more light", 600)
    t.eq(ui.l1, "MOVE CLOSER", "a hint for another attempt changes nothing")
    t.true(ui.awaits("s-1", 7000), "hints do not restart or end the wait")
    fx = ui.verdict(
        {
            "sid": "s-1",
            "ok": True,
            "reason": "OK",
            "l1": "OK  Pass",
            "l2": "0 of 1 left",
            "sound": "ok",
            "left": 0,
            "detail": "",
        },
        7100,
    )
    t.eq(ui.state, U.OK)
    t.eq(fx, [("sound", "ok")])


def test_an_attempt_without_a_verdict_ends_as_no_code_and_never_ok():
    ui = _ui()
    ui.looking("s-2", 0, 8000)
    ui.tick(8000)
    t.eq((ui.state, ui.l1, ui.waiting), (U.ERROR, "NO CODE", None))
    t.eq(
        ui.verdict(
            {
                "sid": "s-2",
                "ok": True,
                "reason": "OK",
                "l1": "OK",
                "l2": "",
                "sound": "ok",
                "left": 0,
                "detail": "",
            },
            8100,
        ),
        [],
        "a late OK does nothing",
    )


def test_camera_config_is_checked():
    base = {"device": "cam-1"}
    cfg = validate(base)
    t.eq(cfg["camera"]["trigger"], "button")
    t.eq(validate({"device": "cam-1", "camera": {"trigger": "motion", "fps": 8}})["camera"]["fps"], 8)
    t.eq(
        validate({"device": "cam-1", "mode": "turnstile"})["camera"]["trigger"],
        "motion",
        "a turnstile watches",
    )
    t.eq(
        validate({"device": "cam-1", "mode": "turnstile", "camera": {"trigger": "button"}})["camera"][
            "trigger"
        ],
        "button",
        "unless told otherwise",
    )
    for bad in (
        {"trigger": "always"},
        {"fps": 0},
        {"fmt": "png"},
        {"size": "UXGA"},
        {"quality": 100},
        {"typo": 1},
    ):
        t.raises(ConfigError, validate, {"device": "cam-1", "camera": bad})
