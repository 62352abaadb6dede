"""The gateway's frame decoder on synthetic camera frames: the ladder, several codes, hints, bad bytes."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.adapters.camera.decode import BadFrame, decode, gray_from_bytes
from tools.camera.synth import Scene, barcode_only, from_jpeg, jpeg, lookalike, no_code, render


def test_a_plain_frame_reads_at_the_first_step() -> None:
    r = decode(render(Scene(text="HXO-000042-AB12")))
    assert r.texts == ("HXO-000042-AB12",)
    assert (r.hint, r.stage) == (None, "plain")


def test_an_inverted_code_on_a_dark_mode_screen_reads() -> None:
    r = decode(render(Scene(text="HXO-INV-1", invert=True, screen=True, moire=0.3)))
    assert r.texts == ("HXO-INV-1",)


def test_a_small_blurred_code_needs_the_upscale_and_without_budget_asks_to_come_closer() -> None:
    g = render(Scene(ppm=2.1, blur=0.9, roll=10, seed=1))
    assert decode(g, budget_ms=0).texts == ()
    assert decode(g, budget_ms=0).hint == "closer"
    r = decode(g)
    assert r.texts == ("HXDEMO-VIP-0001",)
    assert r.stage == "up2"


def test_a_jpeg_frame_at_low_quality_reads() -> None:
    g = from_jpeg(jpeg(render(Scene(width=640, height=480, ppm=6, tilt=25, roll=-30)), 20))
    assert decode(g).texts == ("HXDEMO-VIP-0001",)


def _two(a: str, b: str) -> np.ndarray:
    left = render(Scene(text=a, ppm=4, seed=1))
    right = render(Scene(text=b, ppm=4, seed=2))
    return np.hstack([left, right])


def test_two_different_codes_are_both_reported_with_the_one_at_a_time_hint() -> None:
    r = decode(_two("HXO-A-1", "HXO-B-2"))
    assert sorted(r.texts) == ["HXO-A-1", "HXO-B-2"]
    assert r.hint == "one"


def test_the_same_code_twice_is_one_code() -> None:
    r = decode(_two("HXO-A-1", "HXO-A-1"))
    assert (r.texts, r.hint) == (("HXO-A-1",), None)


@pytest.mark.parametrize(
    ("scene", "hint"),
    [
        (Scene(text="", gain=0.12, noise=1), "dark"),
        (Scene(text="", offset=200), "bright"),
        (Scene(text=""), "none"),
    ],
)
def test_a_frame_without_a_code_gets_a_hint(scene: Scene, hint: str) -> None:
    r = decode(render(scene))
    assert r.texts == ()
    assert r.hint == hint


@pytest.mark.parametrize("make", [barcode_only, lookalike, no_code])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_negatives_read_nothing(make: object, seed: int) -> None:
    frame = make(Scene(seed=seed, ppm=4))  # type: ignore[operator]
    assert decode(frame).texts == ()


def test_gray_bytes_must_match_their_size_and_jpeg_must_open() -> None:
    g = gray_from_bytes(bytes(range(256)) * 3, "gray", 32, 24)
    assert g.shape == (24, 32)
    with pytest.raises(BadFrame):
        gray_from_bytes(b"\x00" * 10, "gray", 32, 24)
    with pytest.raises(BadFrame):
        gray_from_bytes(b"not a jpeg", "jpeg")
    with pytest.raises(BadFrame):
        gray_from_bytes(b"", "bmp")
