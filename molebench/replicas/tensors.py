"""Random weights at full size, one shard at a time, written as safetensors (or as the torch file a scorer reads).

A network is instantiated on the meta device (no memory, no init cost) only to learn its state dict's names and
shapes; each tensor is then drawn on its own, seeded by (replica seed, tensor name), so a replica is reproducible and
memory peaks at one shard's tensors. `MOLEBENCH_REPLICA_THREADS=N` draws up to 2N tensors ahead on N threads (torch
releases the GIL while it draws): the same bytes, N times the drawing speed on N idle cores. Values keep activations O(1) — norm weights about 1, matrices N(0, 1/fan-in),
other vectors small — so a denoising step and a scorer produce finite numbers, as the real weights do.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch

from molebench.errors import InputError

SAFETENSORS_METADATA = {"format": "pt"}  # what diffusers' and transformers' save_pretrained write


def on_meta(build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """`build()` with every parameter on the meta device (shapes only)."""
    with torch.device("meta"):
        return build()


def shapes(model: torch.nn.Module) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Name -> (shape, dtype) of every state-dict entry (persistent buffers included, as save_pretrained saves)."""
    return {name: (tuple(value.shape), value.dtype) for name, value in model.state_dict().items()}


def random_value(name: str, shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor:
    """One tensor, seeded by `seed` and its name (the same replica gets the same bytes on every machine)."""
    if not dtype.is_floating_point:
        return torch.zeros(shape, dtype=dtype)
    key = int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little") & (2**63 - 1)
    generator = torch.Generator().manual_seed(key)
    value = torch.empty(shape)
    owner = name.rsplit(".", 2)[-2].lower() if name.count(".") else ""
    is_norm = "norm" in owner or owner.startswith("ln") or owner.endswith("layernorm")
    if is_norm and name.endswith("weight"):
        value.normal_(1.0, 0.1, generator=generator)
    elif value.dim() >= 2:
        value.normal_(0.0, max(value[0].numel(), 1) ** -0.5, generator=generator)
    else:
        value.normal_(0.0, 0.02, generator=generator)
    return value.to(dtype)


def random_state(entries: dict[str, tuple[tuple[int, ...], torch.dtype]], dtype: torch.dtype | None,
                 seed: int) -> dict[str, torch.Tensor]:
    """Random tensors for `entries`; floating ones stored in `dtype` (None: the model's own dtype)."""
    return {name: random_value(name, shape, dtype if dtype is not None and own.is_floating_point else own, seed)
            for name, (shape, own) in entries.items()}


def save_safetensors(state: dict[str, torch.Tensor], path: Path) -> Path:
    from safetensors.torch import save_file

    save_file(state, str(path), metadata=SAFETENSORS_METADATA)
    return path


def shard_plan(entries: dict[str, tuple[tuple[int, ...], torch.dtype]], names: list[str]) -> list[list[str]]:
    """Split the keys into len(names) consecutive groups of about equal bytes (the shard files of a repository)."""
    if len(names) == 1:
        return [list(entries)]
    sizes = {k: torch.Size(s).numel() for k, (s, _) in entries.items()}
    share = sum(sizes.values()) / len(names)
    groups: list[list[str]] = [[]]
    done = 0
    for key, size in sizes.items():
        if done >= share * len(groups) and len(groups) < len(names):
            groups.append([])
        groups[-1].append(key)
        done += size
    return groups


_SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
                       torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}


def stream_safetensors(entries: dict[str, tuple[tuple[int, ...], torch.dtype]], dtype: torch.dtype | None, seed: int,
                       path: Path) -> Path:
    """Write a safetensors file tensor by tensor (the format: 8-byte header length, JSON header of dtypes, shapes and
    byte offsets, then the raw little-endian data), drawing each tensor just before it is written: memory holds one
    tensor, not the file (a 5 GB UNet shard would otherwise be held twice while it is serialised)."""
    stored = {name: (shape, dtype if dtype is not None and own.is_floating_point else own)
              for name, (shape, own) in entries.items()}
    header: dict[str, object] = {"__metadata__": SAFETENSORS_METADATA}
    offset = 0
    for name, (shape, kind) in stored.items():
        size = torch.Size(shape).numel() * torch.empty((), dtype=kind).element_size()
        header[name] = {"dtype": _SAFETENSORS_DTYPES[kind], "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as handle:
        handle.write(len(encoded).to_bytes(8, "little"))
        handle.write(encoded)
        for value in drawn(stored, seed):
            if value.numel():
                handle.write(memoryview(value.contiguous().reshape(-1).view(torch.uint8).numpy()))
    return path


def draw_threads() -> int:
    """Threads that draw tensors (`MOLEBENCH_REPLICA_THREADS`, default 1)."""
    value = os.environ.get("MOLEBENCH_REPLICA_THREADS", "1")
    if not value.isdigit() or int(value) < 1:
        raise InputError(f"MOLEBENCH_REPLICA_THREADS={value}: give a whole number of threads, 1 or more")
    return int(value)


def drawn(stored: dict[str, tuple[tuple[int, ...], torch.dtype]], seed: int) -> Iterator[torch.Tensor]:
    """Each tensor of `stored` in order; with several threads the next ones are drawn meanwhile (each tensor has
    its own generator, so the values do not depend on the thread count)."""
    threads = draw_threads()
    if threads == 1:
        yield from (random_value(name, shape, kind, seed) for name, (shape, kind) in stored.items())
        return
    items = iter(stored.items())
    with ThreadPoolExecutor(threads, thread_name_prefix="replica-draw") as pool:
        ahead = deque(pool.submit(random_value, name, shape, kind, seed)
                      for name, (shape, kind) in itertools.islice(items, 2 * threads))
        while ahead:
            value = ahead.popleft().result()
            for name, (shape, kind) in itertools.islice(items, 1):
                ahead.append(pool.submit(random_value, name, shape, kind, seed))
            yield value


def write_shards(entries: dict[str, tuple[tuple[int, ...], torch.dtype]], dtype: torch.dtype | None, seed: int,
                 names: list[str], scratch: Path) -> Iterable[tuple[str, Path]]:
    """Yield (file name, path) per shard, each written before the next is drawn; with several names, the last item
    is the `.index.json` (transformers' and diffusers' sharded layout)."""
    weight_map: dict[str, str] = {}
    total = 0
    for name, keys in zip(names, shard_plan(entries, names)):
        part = {k: entries[k] for k in keys}
        path = stream_safetensors(part, dtype, seed, scratch / name)
        total += sum(torch.Size(shape).numel() * torch.empty((), dtype=dtype if dtype is not None and own.is_floating_point
                                                            else own).element_size()
                     for shape, own in part.values())
        weight_map.update({k: name for k in keys})
        yield name, path
    if len(names) > 1:
        index_name = names[0].split("-00001-of-")[0] + ".safetensors.index.json"
        index = scratch / index_name
        index.write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
        yield index_name, index
