"""Set-level scoring stage: features of the run's images and of the reference set, then one value per metric.

Runs in the main process after the per-image scorers (features are cheap next to generation; one process keeps the
shard files single-writer). Resumable at two levels: feature shards (a rerun extracts only images whose content key
has no cached features) and the result row (skipped when a row with the same version, group, image hash and
reference hash exists).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from molebench import ui
from molebench.atomic import sha256_json
from molebench.errors import InputError
from molebench.paths import cache_dir
from molebench.scoring.reference import file_sources
from molebench.scoring.sets import SET_GROUP_ALL, FeatureCache, SetScorer, fill_features
from molebench.store import RunStore
from molebench.store.run_store import SET_SCORE_COLUMNS


def score_sets(store: RunStore, items: pd.DataFrame, scorers: list[SetScorer], group: str = SET_GROUP_ALL,
               tag: str = "") -> int:
    """Compute each set scorer over `items` (one group) and store the rows; returns how many values were computed."""
    computed = 0
    for scorer in scorers:
        if scorer.reference_images is None:
            scorer.bind_reference(None)
        scorer.load()
        chunk = max(scorer.batch_size, 1) * 4
        generated = FeatureCache(store.features_dir / scorer.feature_tag)
        reference = FeatureCache(cache_dir("features", scorer.feature_tag))
        sources = file_sources(store.root / path for path in items["image"])
        with ui.progress() as bar:
            task = bar.add_task(f"{tag}features {scorer.registry_name}",
                                total=len(sources) + len(scorer.reference_images))
            gen_keys, gen_new = fill_features(scorer, generated, sources, chunk, lambda n: bar.advance(task, n))
            ref_keys, ref_new = fill_features(scorer, reference, scorer.reference_images, chunk,
                                              lambda n: bar.advance(task, n))
        ui.err.print(f"{tag}{scorer.registry_name}: features of {gen_new} generated and {ref_new} reference images "
                     f"extracted now ({len(gen_keys) - gen_new} and {len(ref_keys) - ref_new} cached)")
        images_hash, reference_hash = sha256_json(sorted(gen_keys))[:16], sha256_json(sorted(ref_keys))[:16]
        old = store.read_set_scores()
        done = old[(old["scorer"] == scorer.registry_name) & (old["scorer_version"] == scorer.version)
                   & (old["group"] == group) & (old["images_sha256"] == images_hash)
                   & (old["reference"] == reference_hash)]
        if set(done["metric"]) >= set(scorer.metrics):
            ui.err.print(f"{tag}{scorer.registry_name}: already computed for these images and this reference")
            continue
        if not gen_keys:
            raise InputError(f"{scorer.registry_name}: the run has no images to compare with the reference")
        dim = len(next(generated.batches(gen_keys[:1], 1))[0])
        values = scorer.compute(generated.batches(gen_keys, chunk), reference.batches(ref_keys, chunk), dim,
                                len(gen_keys), len(ref_keys))
        created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        rows = pd.DataFrame([{"scorer": scorer.registry_name, "scorer_version": scorer.version, "metric": metric,
                              "group": group, "value": value, "std": std, "n": len(gen_keys),
                              "n_reference": len(ref_keys), "reference": reference_hash,
                              "images_sha256": images_hash, "created": created}
                             for metric, (value, std) in values.items()], columns=SET_SCORE_COLUMNS)
        store.write_set_scores(rows)
        computed += len(rows)
    return computed
