"""Replicas (molebench.replicas): the hub cache layout they are written in, and the loader path they take.

The full-size replicas are exercised by `make check-fullsize` (minutes, tens of GB). Here tiny pipelines are written
with the same writer (`RepoWriter`) under the real repository ids into a private Hugging Face cache, and the real
registered model (`sd15`, `sdxl`, `pixart-alpha`, `vq-diffusion`, `versatile-diffusion`, `mole-sd15`, not a tiny
variant) is loaded from it: its loader must
be handed exactly the cache snapshot, with nothing tiny-specific in the way.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from molebench import replicas
from molebench.errors import InputError
from molebench.registry import MODELS, SCORERS
from molebench.replicas.hubcache import REPLICA_PREFIX, RepoWriter, folder_bytes, repo_folder
from molebench.replicas.specs import SPECS


def _replicate(hub: Path, repo_id: str, source: Path) -> Path:
    """Every file of the folder `source` written into `hub` as `repo_id`'s snapshot, as the replica builders do."""
    writer = RepoWriter(hub, repo_id)
    for path in sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith(".")):
        writer.add_bytes(str(path.relative_to(source)), path.read_bytes())
    return writer.commit()


def test_replica_ids_are_the_registry_hub_ids():
    """A replica is worth something only under the id the loader looks up."""
    for name in replicas.MODEL_NAMES:
        cls = MODELS.get(name)
        expected = {cls.hub_id, getattr(cls, "refiner_hub_id", None)} - {None}
        if SPECS[name].repos:
            assert set(SPECS[name].repos) <= expected, name
        else:
            assert cls.hub_id is None, name  # published outside the hub: a folder named by MOLEBENCH_WEIGHTS_...
    assert SPECS["sdxl-refiner"].repos == (MODELS.get("sdxl-refiner").refiner_hub_id,)
    from molebench.scoring.clip_score import CLIPTLarge
    from molebench.scoring.imagereward import IMAGEREWARD_REPO, TOKENIZER_REPOS

    assert SPECS["clip-t"].repos == (CLIPTLarge.hub_id,)
    assert SPECS["imagereward"].repos == (IMAGEREWARD_REPO, TOKENIZER_REPOS[0])
    assert set(replicas.SCORER_NAMES) <= set(SCORERS.names())


def test_the_cache_layout_is_what_the_hub_client_reads(hub, tmp_path):
    from huggingface_hub import snapshot_download, try_to_load_from_cache

    writer = RepoWriter(hub, "someone/model")
    writer.add_text("config.json", "{}\n")
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"x" * 1000)
    blob = writer.add_file("sub/w.safetensors", weights)
    snapshot = writer.commit()
    assert snapshot.name.startswith(REPLICA_PREFIX) and len(snapshot.name) == 40
    assert Path(snapshot_download("someone/model", local_files_only=True)) == snapshot
    assert Path(try_to_load_from_cache("someone/model", "sub/w.safetensors")).resolve() == Path(blob)
    assert Path(blob).name == __import__("hashlib").sha256(b"x" * 1000).hexdigest()  # weight blobs: sha256
    other = RepoWriter(hub, "someone/other")
    other.link_blob("w.safetensors", Path(blob))  # a shared file is a hard link: counted once
    other.commit()
    both = folder_bytes(repo_folder(hub, "someone/model")) + folder_bytes(repo_folder(hub, "someone/other"))
    assert folder_bytes(hub) < both


def test_a_real_download_is_never_replaced(hub):
    real = repo_folder(hub, "someone/real")
    (real / "refs").mkdir(parents=True)
    (real / "refs" / "main").write_text("0123456789abcdef0123456789abcdef01234567")
    with pytest.raises(InputError, match="real download"):
        RepoWriter(hub, "someone/real")


def _loaded_from(monkeypatch, name: str, **options) -> tuple[object, list]:
    """Load the registered model `name` on the CPU, recording what its `from_pretrained` is handed (the class's own:
    the deprecated pipelines override it to load component by component)."""
    handed: list = []
    cls = MODELS.get(name)
    owner = next(c for c in cls.__mro__ if "from_pretrained" in vars(c))
    original = owner.from_pretrained

    def spy(self, path, dtype):
        handed.append((Path(path), dtype))
        return original(self, path, dtype)

    monkeypatch.setattr(owner, "from_pretrained", spy)
    model = cls(**options)
    import torch

    size = model.default_size if name == "vq-diffusion" else (64, 64)  # its token grid fixes the size
    settings = model.settings(steps=1, size=size, device="cpu")
    model.load(torch.device("cpu"), settings)
    return model, handed


@pytest.mark.parametrize("name, tiny", [("sd15", "tiny-sd15"), ("sdxl", "tiny-sdxl"),
                                        ("pixart-alpha", "tiny-pixart-alpha"), ("vq-diffusion", "tiny-vq-diffusion"),
                                        ("versatile-diffusion", "tiny-versatile-diffusion")])
def test_the_real_model_loads_its_replica_from_the_cache_path(hub, monkeypatch, name, tiny):
    from molebench.models.tiny_variant import TinyVariant

    snapshot = _replicate(hub, MODELS.get(name).hub_id, MODELS.get(tiny)().weights_path())
    options = {"resolution_binning": "false", "clean_caption": "false"} if name.startswith("pixart") else {}
    model, handed = _loaded_from(monkeypatch, name, **options)
    assert not isinstance(model, TinyVariant)
    assert [path for path, _ in handed] == [snapshot]  # the loader got the cache snapshot itself, nothing else
    assert model.fingerprint()["revision"] == snapshot.name and model.pipe is not None


def test_mole_sd15_loads_its_release_folder_and_the_base_from_the_cache(hub, monkeypatch, tmp_path):
    tiny = MODELS.get("tiny-mole-sd15")()
    snapshot = _replicate(hub, MODELS.get("sd15").hub_id, MODELS.get("tiny-sd15")().weights_path())
    release = tmp_path / "mole-sd15"
    release.mkdir()
    for role, path in {**tiny.files.experts, "gates": tiny.files.gates}.items():
        (release / path.name).write_bytes(path.read_bytes())
    monkeypatch.setenv("MOLEBENCH_WEIGHTS_MOLE_SD15", str(release))
    model, handed = _loaded_from(monkeypatch, "mole-sd15")
    assert [path for path, _ in handed] == [snapshot]
    assert model.files.root == release and model.files.stock_pipeline


def test_a_run_on_replica_weights_is_marked_and_warned(hub):
    """Random weights must never pass for real ones: the fingerprint says `replica` and the command warns."""
    from molebench.assets.weights import is_replica_path
    from molebench.runner.score_step import mark_replica, replica_warnings

    _replicate(hub, MODELS.get("sd15").hub_id, MODELS.get("tiny-sd15")().weights_path())
    marked = mark_replica(MODELS.get("sd15")().fingerprint())
    assert marked["replica"] is True
    assert replica_warnings({"sd15": marked}) == [
        "sd15's weights are a molebench replica (random weights at full size, built by molebench.replicas): its "
        "images and scores check speed and code paths only and say nothing about quality"]
    real = {"path": str(hub / "models--a--b" / "snapshots" / "1c2d3e4f" / "unet")}
    assert mark_replica(real) == real and replica_warnings({"x": real}) == []
    assert is_replica_path(hub / "molebench-replicas" / "hps-v1" / "hpc.pt")


def test_weights_lists_a_replica_as_one(hub, capsys):
    from molebench.cli import main
    from molebench.cli.weights import weights_report

    assert weights_report(["sd15"])[0]["replica"] is False
    _replicate(hub, MODELS.get("sd15").hub_id, MODELS.get("tiny-sd15")().weights_path())
    (row,) = weights_report(["sd15"])
    assert row["present"] and row["replica"]
    main(["weights", "sd15"])
    assert "present as a molebench replica (random weights" in " ".join(capsys.readouterr().out.split())


# float32 weight-file sizes of the two repositories as a public mirror lists them (PaddleNLP's model listing of
# microsoft/vq-diffusion-ithq and shi-labs/versatile-diffusion, in MiB / GiB rounded to 0.1; docs/replicas.md): one
# float32 number per parameter, so each config must give that parameter count
PUBLISHED = {("vq", "text_encoder"): "241.0 MB", ("vq", "vqvae"): "244.2 MB", ("vq", "transformer"): "5.1 GB",
             ("vd", "text_encoder"): "471.7 MB", ("vd", "image_encoder"): "1.1 GB", ("vd", "vae"): "319.1 MB",
             ("vd", "image_unet"): "3.2 GB", ("vd", "text_unet"): "6.4 GB"}


def test_the_deprecated_pipelines_replica_configs_give_the_published_sizes():
    from molebench.replicas import pipelines
    from molebench.replicas.components import diffusers_model, transformers_model
    from molebench.replicas.configs_legacy import VERSATILE_DIFFUSION, VQ_DIFFUSION
    from molebench.replicas.tensors import on_meta, shapes

    builders = {"transformer": pipelines._pre_norm_type_transformer, "text_unet": pipelines._legacy_model}
    for (repo, name), listed in PUBLISHED.items():
        config = (VQ_DIFFUSION if repo == "vq" else VERSATILE_DIFFUSION)[f"{name}/config.json"]
        build = builders.get(name) or (diffusers_model if "_class_name" in config else transformers_model)
        params = sum(math.prod(shape) for shape, _ in shapes(on_meta(lambda: build(config))).values())
        value, unit = listed.split()
        assert f"{params * 4 / 2 ** (20 if unit == 'MB' else 30):.1f}" == value, name
    # what the loader must cope with in the real snapshots (docs/models.md)
    assert "norm_type" not in VQ_DIFFUSION["transformer/config.json"]
    assert VQ_DIFFUSION["model_index.json"]["learned_classifier_free_sampling_embeddings"][0] == "vq_diffusion"
    assert VERSATILE_DIFFUSION["model_index.json"]["text_unet"] == ["versatile_diffusion", "UNetFlatConditionModel"]
