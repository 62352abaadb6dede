"""The camera benchmark's scoring (tiny sizes: the real run is `make bench-camera`)."""

from __future__ import annotations

from tools.camera.bench import Score, conditions, negatives, realistic_set
from tools.camera.synth import Scene, render


def test_a_score_counts_reads_misreads_and_stages() -> None:
    sc = Score()
    sc.add("HXO-1", render(Scene(text="HXO-1")))
    sc.add("HXO-2", render(Scene(text="HXO-OTHER")))  # the decoder read a different text: a misread
    sc.add("HXO-3", render(Scene(text="")))
    row = sc.row()
    assert (row["frames"], row["misreads"], row["read_pct"], row["stages"]) == (3, 1, 33.3, {"plain": 1})


def test_the_sets_run_and_are_reproducible() -> None:
    a = realistic_set(3, seed=5)
    b = realistic_set(3, seed=5)
    assert {w: s.read for w, s in a.items()} == {w: s.read for w, s in b.items()}
    assert set(a) == {320, 640}
    rows = list(conditions(1, seed=5))
    assert len(rows) == 2 * sum(1 for _ in rows[::2])  # every level at both resolutions
    assert negatives(1, seed=5) == {"no code": 0, "barcode only": 0, "QR look-alike": 0}
