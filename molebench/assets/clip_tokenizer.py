"""A real CLIP BPE tokenizer without a download: built from the merges file that ships in the open_clip wheel.

CLIP's vocabulary is fully determined by its merges list (256 byte symbols, the same with an end-of-word marker,
one token per merge, then start/end tokens), so vocab.json and merges.txt for transformers' `CLIPTokenizer` can be
written from `bpe_simple_vocab_16e6.txt.gz` alone.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

CLIP_VOCAB_SIZE = 49408
_N_MERGES = CLIP_VOCAB_SIZE - 2 * 256 - 2


def bpe_path() -> Path:
    import open_clip

    path = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    if not path.exists():
        from molebench.errors import MolebenchError

        raise MolebenchError(f"the open_clip_torch install lacks {path.name}; reinstall open_clip_torch")
    return path


@lru_cache(maxsize=1)
def _byte_symbols() -> tuple[str, ...]:
    """Printable stand-ins for the 256 byte values (printable Latin-1 bytes map to themselves, the rest above 255)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = 0
    symbols = []
    for byte in range(256):
        if byte in keep:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + extra))
            extra += 1
    # order used by CLIP's vocabulary: the kept printable bytes first, then the remapped ones
    ordered = [chr(b) for b in keep] + [symbols[b] for b in range(256) if b not in keep]
    return tuple(ordered)


def clip_merges() -> list[tuple[str, str]]:
    lines = gzip.open(bpe_path(), "rt", encoding="utf-8").read().split("\n")
    pairs = [tuple(line.split()) for line in lines[1 : _N_MERGES + 1]]
    return [(a, b) for a, b in pairs]


def clip_vocab() -> dict[str, int]:
    symbols = list(_byte_symbols())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in clip_merges()]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: index for index, token in enumerate(tokens)}


def write_vocab_and_merges(folder: str | Path) -> Path:
    """CLIP's vocab.json and merges.txt in `folder`, in place of a tokenizer.json: the layout of the Stable Diffusion
    repositories on the hub, which transformers also reads about 5x faster (0.15 s against 0.8 s: it builds the BPE
    from the two files instead of parsing a 3.6 MB JSON). Both layouts give the same tokens."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(clip_vocab(), ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in clip_merges()),
                                       encoding="utf-8")
    (folder / "tokenizer.json").unlink(missing_ok=True)
    return folder


def write_clip_tokenizer(folder: str | Path) -> Path:
    """Save a transformers `CLIPTokenizer` (vocab.json, merges.txt, configs) into `folder`."""
    from transformers import CLIPTokenizer

    folder = write_vocab_and_merges(folder)
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    tokenizer.save_pretrained(str(folder))
    return folder
