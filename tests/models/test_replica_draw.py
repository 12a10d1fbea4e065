"""Replica tensors drawn on several threads (`MOLEBENCH_REPLICA_THREADS`, the lent GPU machine's 16 cores) are the
same bytes as drawn on one: each tensor has its own generator, and the writer keeps the file's order."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from molebench.errors import InputError
from molebench.replicas.tensors import stream_safetensors

ENTRIES = {f"block.{i}.{kind}": (shape, torch.float32)
           for i in range(7) for kind, shape in (("proj.weight", (48, 32)), ("norm.weight", (48,)))}
ENTRIES["empty.bias"] = ((0,), torch.float32)
ENTRIES["position_ids"] = ((1, 5), torch.int64)
ENTRIES["logit_scale"] = ((), torch.float32)  # a 0-dim tensor (CLIP's), stored as half


def test_threaded_drawing_writes_the_same_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MOLEBENCH_REPLICA_THREADS", "1")
    one = stream_safetensors(ENTRIES, torch.float16, 7, tmp_path / "one.safetensors").read_bytes()
    monkeypatch.setenv("MOLEBENCH_REPLICA_THREADS", "3")
    three = stream_safetensors(ENTRIES, torch.float16, 7, tmp_path / "three.safetensors")
    assert three.read_bytes() == one
    state = load_file(str(three))
    assert set(state) == set(ENTRIES)
    assert state["block.3.proj.weight"].shape == (48, 32) and state["block.3.proj.weight"].dtype == torch.float16
    assert state["position_ids"].dtype == torch.int64 and state["empty.bias"].numel() == 0
    assert state["logit_scale"].shape == () and state["logit_scale"].dtype == torch.float16
    assert state["block.0.proj.weight"].float().std() > 0.05  # drawn, not zeros


def test_thread_count_must_be_a_positive_whole_number(tmp_path, monkeypatch):
    monkeypatch.setenv("MOLEBENCH_REPLICA_THREADS", "0")
    with pytest.raises(InputError, match="MOLEBENCH_REPLICA_THREADS=0"):
        stream_safetensors(ENTRIES, torch.float16, 7, tmp_path / "x.safetensors")
