"""The `harness` bench section on the tiny model (no timing asserted: the figures are `make bench`'s)."""

from __future__ import annotations

from molebench.perf.harness import Case, measure


def test_harness_section_measures_both_sides_and_every_part(tmp_path):
    result = measure(Case("tiny", "tiny-sd15", 2, 2, 64), tmp_path, rounds=1)
    assert result["images"] == 2 and len(list((tmp_path / "run-0" / "images").glob("*.png"))) == 2
    assert all(result[side] > 0 for side in ("raw", "harness", "inline"))
    assert result["ratio"] == result["raw"] / result["harness"]
    assert set(result["parts"]) == {"PNG encoding", "sha256", "atomic write + fsync", "scoring hand-off (PNG decode)",
                                    "parquet (items + hash records)"}
    assert all(ms >= 0 for ms in result["parts"].values())
