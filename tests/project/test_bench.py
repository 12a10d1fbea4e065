"""`make bench` bookkeeping (no timing here: speed claims are measured by `python -m molebench.perf`)."""

import importlib

from molebench.perf import SECTIONS, section_module
from molebench.perf.scorers import ratio_text, verdict


def test_verdict_is_decided_on_the_unrounded_ratio():
    assert verdict("hps-tiny", 4.9962, 5.0) == "hps-tiny 4.996× NOT met"  # never "5.00× NOT met"
    assert verdict("hps-tiny", 5.0004, 5.0) == "hps-tiny 5.0004× met"
    assert verdict("imagereward-tiny", 6.456, 5.0) == "imagereward-tiny 6.46× met"
    assert ratio_text(5.0, 5.0) == "5.00×"


def test_every_section_is_a_module_with_run():
    for name in SECTIONS:
        assert callable(importlib.import_module(section_module(name)).run)
