"""Set-level scoring stage: features of the run's images and of the reference set, then one value per metric.

Runs in the main process after the per-image scorers (features are cheap next to generation; one process keeps the
shard files single-writer). Groups: `all` (the whole run) and, for a `--protocol paper` run, `repeat-0`, `repeat-1`,
`repeat-2` (each repeat's sample and, for coco-human, the real images of that sample's captions). Resumable at two
levels: feature shards (a rerun extracts only images whose content key has no cached features) and the result row
(skipped when a row with the same version, group, image hash and reference hash exists).

A crop metric (`fid@hand`, molebench.scoring.region_sets) compares the crops of its part instead of the images: the
scorer's `sources_of` maps the images (run and reference) to their crops, each crop owned by its image, so groups
(repeats) take the crops of their images; `n` and `n_reference` count crops, while `images_sha256` and `reference`
still hash the images' content keys (the crops are a function of the images and the scorer's version).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from molebench import ui
from molebench.paths import cache_dir
from molebench.runner.environment import utc_now
from molebench.scoring.reference import file_sources, prompt_image_ids
from molebench.scoring.sets import Derived, FeatureCache, SetScorer, fill_features
from molebench.store import RunStore
from molebench.store.run_store import SET_GROUP_ALL, SET_SCORE_COLUMNS, set_images_hash


def bind_references(scorers: list, prompt_set, items: pd.DataFrame) -> None:
    """Resolve set scorers' reference images: by the prompts' source `image_id` (coco-human), else the whole set."""
    set_scorers = [s for s in scorers if s.kind == "set"]
    if not set_scorers:
        return
    ids = prompt_image_ids({item.id: item.meta for item in prompt_set.items}, items["prompt_id"])
    for scorer in set_scorers:
        scorer.bind_reference(ids)


def set_groups(store: RunStore, items: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """("all", every item), then for a `--protocol paper` run one ("repeat-R", its sample's items) per repeat."""
    groups = [(SET_GROUP_ALL, items)]
    membership = store.read_repeats()
    if membership is not None:
        for repeat, members in membership.groupby("repeat", sort=True):
            groups.append((f"repeat-{repeat}", items[items["prompt_index"].isin(set(members["prompt_index"]))]))
    return groups


def score_sets(store: RunStore, items: pd.DataFrame, scorers: list[SetScorer], tag: str = "") -> int:
    """Compute each set scorer over the run (and each repeat) and store the rows; returns how many values were
    computed now. Features are extracted once for the union of the groups."""
    computed = 0
    groups = set_groups(store, items)
    for scorer in scorers:
        if scorer.reference_images is None:
            scorer.bind_reference(None)
        scorer.load()
        chunk = max(scorer.batch_size, 1) * 4
        generated = FeatureCache(store.features_dir / scorer.feature_tag)
        reference = FeatureCache(cache_dir("features", scorer.feature_tag))
        images = file_sources(store.root / path for path in items["image"])
        gen = scorer.sources_of(images, store.features_dir)
        ref = scorer.sources_of(scorer.reference_images, cache_dir("features"))
        with ui.progress() as bar:
            task = bar.add_task(f"{tag}features {scorer.registry_name}", total=len(gen.sources) + len(ref.sources))
            gen_keys, gen_new = fill_features(scorer, generated, gen.sources, chunk, lambda n: bar.advance(task, n))
            ref_keys, ref_new = fill_features(scorer, reference, ref.sources, chunk, lambda n: bar.advance(task, n))
        ui.err.print(f"{tag}{scorer.registry_name}: features of {gen_new} generated and {ref_new} reference "
                     f"{scorer.unit} extracted now ({len(gen_keys) - gen_new} and {len(ref_keys) - ref_new} cached)")
        gen_of, gen_image = owned(list(items["key"]), gen, gen_keys)
        ref_of, ref_image = owned([id(s) for s in scorer.reference_images], ref, ref_keys)
        for group, members in groups:
            refs = [id(s) for s in scorer.reference_for(members["prompt_id"])]
            keys = [k for i in members["key"] for k in gen_of[i]], [k for r in refs for k in ref_of[r]]
            hashes = set_images_hash(gen_image[i] for i in members["key"]), set_images_hash(ref_image[r] for r in refs)
            computed += _score_group(store, scorer, group, keys, hashes, (generated, reference), chunk, tag)
    return computed


def owned(owners: list, derived: Derived, keys: list[str]) -> tuple[dict[Any, list[str]], dict[Any, str]]:
    """Per owner (an item key, a reference image): the feature keys of its sources (itself, or its crops: none, one
    or more), and its image's content key (what `images_sha256` and `reference` hash: the images a value rests on)."""
    features: dict[Any, list[str]] = {owner: [] for owner in owners}
    for index, key in zip(derived.owners, keys):
        features[owners[index]].append(key)
    return features, dict(zip(owners, keys if derived.image_keys is None else derived.image_keys))


def _score_group(store: RunStore, scorer: SetScorer, group: str, keys: tuple[list[str], list[str]],
                 hashes: tuple[str, str], caches: tuple[FeatureCache, FeatureCache], chunk: int, tag: str) -> int:
    """One value per metric of `scorer` for one group, from the feature keys `keys` (generated, reference); skipped
    when stored for the same version and the same images (`hashes`)."""
    (gen_keys, ref_keys), (images_hash, reference_hash), (generated, reference) = keys, hashes, caches
    old = store.read_set_scores()
    done = old[(old["scorer"] == scorer.registry_name) & (old["scorer_version"] == scorer.version)
               & (old["group"] == group) & (old["images_sha256"] == images_hash) & (old["reference"] == reference_hash)]
    if set(done["metric"]) >= set(scorer.metrics):
        ui.err.print(f"{tag}{scorer.registry_name} ({group}): already computed for these images and this reference")
        return 0
    scorer.check_counts(len(gen_keys), len(ref_keys))
    dim = len(next(generated.batches(gen_keys[:1], 1))[0])
    values = scorer.compute(generated.batches(gen_keys, chunk), reference.batches(ref_keys, chunk), dim,
                            len(gen_keys), len(ref_keys))
    created = utc_now()
    rows = pd.DataFrame([{"scorer": scorer.registry_name, "scorer_version": scorer.version, "metric": metric,
                          "group": group, "value": value, "std": std, "n": len(gen_keys),
                          "n_reference": len(ref_keys), "reference": reference_hash, "images_sha256": images_hash,
                          "created": created} for metric, (value, std) in values.items()], columns=SET_SCORE_COLUMNS)
    store.write_set_scores(rows)
    return len(rows)
