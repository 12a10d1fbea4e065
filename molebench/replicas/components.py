"""Writing one pipeline component (config + random full-size weights) or tokenizer into a repository replica.

Each network is built on the meta device from the published config with the class its loader uses, so the replica's
tensor names and shapes are exactly what `from_pretrained` expects; the weights are drawn shard by shard
(molebench.replicas.tensors) and moved into the cache as blobs before the next shard is drawn.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from molebench.replicas.hubcache import RepoWriter
from molebench.replicas.tensors import on_meta, shapes, write_shards


def join(folder: str, name: str) -> str:
    """A path inside the repository (`folder` "" is its root)."""
    return f"{folder}/{name}" if folder else name


def config_text(config: dict[str, Any]) -> str:
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def add_configs(writer: RepoWriter, files: dict[str, Any]) -> None:
    for path, config in files.items():
        writer.add_text(path, config_text(config))


def diffusers_model(config: dict[str, Any]) -> torch.nn.Module:
    import diffusers

    return getattr(diffusers, config["_class_name"]).from_config(config)


def transformers_model(config: dict[str, Any]) -> torch.nn.Module:
    import transformers

    cls = getattr(transformers, config["architectures"][0])
    return cls(cls.config_class.from_dict(config))


def safety_checker(config: dict[str, Any]) -> torch.nn.Module:
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig

    return StableDiffusionSafetyChecker(CLIPConfig.from_dict(config))


def add_weights(writer: RepoWriter, folder: str, build: Callable[[], torch.nn.Module], names: list[str],
                dtype: torch.dtype | None, seed: int, scratch: Path, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """Random weights for the network `build()` makes, as `folder/<names...>`; returns file -> blob path."""
    model = on_meta(build)
    entries = {k: v for k, v in shapes(model).items() if k not in drop}
    del model
    blobs = {}
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        for name, path in write_shards(entries, dtype, seed, names, Path(tmp)):
            blobs[name] = writer.add_file(join(folder, name), path)
    return blobs


def add_component(writer: RepoWriter, folder: str, config: dict[str, Any], weights: str | list[str],
                  dtype: torch.dtype | None, seed: int, scratch: Path,
                  build: Callable[[dict[str, Any]], torch.nn.Module] | None = None) -> dict[str, str]:
    """`folder/config.json` and its weights; `build` defaults to the diffusers or transformers class it names."""
    writer.add_text(join(folder, "config.json"), config_text(config))
    maker = build or (diffusers_model if "_class_name" in config else transformers_model)
    names = [weights] if isinstance(weights, str) else weights
    return add_weights(writer, folder, lambda: maker(config), names, dtype, seed, scratch)


# --- tokenizers ---------------------------------------------------------------------------------------------------
_CLIP_TOKEN = {"lstrip": False, "normalized": True, "rstrip": False, "single_word": False}


def add_clip_tokenizer(writer: RepoWriter, folder: str, pad_token: str, name_or_path: str) -> None:
    """CLIP's vocab.json and merges.txt (molebench.assets.clip_tokenizer: from the open_clip wheel's merges, the same
    tokens as OpenAI's) with the hub's tokenizer_config.json and special_tokens_map.json."""
    from molebench.assets.clip_tokenizer import write_vocab_and_merges

    with tempfile.TemporaryDirectory() as tmp:
        made = write_vocab_and_merges(tmp)
        writer.add_file(join(folder, "vocab.json"), made / "vocab.json")
        writer.add_file(join(folder, "merges.txt"), made / "merges.txt")
    bos = {"content": "<|startoftext|>", **_CLIP_TOKEN}
    eos = {"content": "<|endoftext|>", **_CLIP_TOKEN}
    writer.add_text(join(folder, "special_tokens_map.json"),
                    config_text({"bos_token": bos, "eos_token": eos, "pad_token": pad_token, "unk_token": eos}))
    typed = lambda token: {"__type": "AddedToken", **token}  # noqa: E731
    writer.add_text(join(folder, "tokenizer_config.json"), config_text({
        "add_prefix_space": False, "bos_token": typed(bos), "do_lower_case": True, "eos_token": typed(eos),
        "errors": "replace", "model_max_length": 77, "name_or_path": name_or_path, "pad_token": pad_token,
        "special_tokens_map_file": "./special_tokens_map.json", "tokenizer_class": "CLIPTokenizer",
        "unk_token": typed(eos)}))


def bert_vocab() -> bytes:
    """bert-base-uncased's vocab.txt (30522 WordPiece entries), shipped as package data (docs/replicas.md)."""
    import gzip

    source = Path(__file__).resolve().parent.parent / "data" / "replicas" / "bert-base-uncased-vocab.txt.gz"
    return gzip.decompress(source.read_bytes())


def t5_pieces(count: int) -> list[tuple[str, float]]:
    """A Unigram vocabulary of `count` pieces in T5's layout (<pad>, </s>, <unk> first): English word pieces from
    BERT's vocabulary (`▁word` for words, `word` for continuations) and every printable character, scored so longer
    pieces win. Not T5's own pieces (its spiece.model could not be obtained offline): the same size and specials."""
    import string

    pieces: dict[str, float] = {}
    for char in string.printable.strip():
        pieces.setdefault(char, -12.0)
        pieces.setdefault("▁" + char, -11.0)
    pieces.setdefault("▁", -10.0)
    for line in bert_vocab().decode("utf-8").splitlines():
        if line.startswith("[") or not line:
            continue
        piece = line[2:] if line.startswith("##") else "▁" + line
        pieces.setdefault(piece, -10.0 + 0.5 * len(piece))
    chosen = list(pieces.items())[: count - 3]
    return [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *chosen]


def add_t5_tokenizer(writer: RepoWriter, folder: str, scratch: Path) -> None:
    """A transformers T5Tokenizer (tokenizer.json) with T5's 32000 pieces and 100 <extra_id_N> tokens."""
    from transformers import T5Tokenizer

    from molebench.replicas.configs_other import T5_EXTRA_IDS, T5_PIECES

    tokenizer = T5Tokenizer(vocab=t5_pieces(T5_PIECES), extra_ids=T5_EXTRA_IDS, model_max_length=512)
    out = Path(tempfile.mkdtemp(dir=scratch))
    try:
        tokenizer.save_pretrained(str(out))
        for path in sorted(out.iterdir()):
            writer.add_file(join(folder, path.name), path)
    finally:
        shutil.rmtree(out, ignore_errors=True)
