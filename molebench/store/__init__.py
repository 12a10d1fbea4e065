"""The results store: one folder per run (manifest, images, scores, summary), every write atomic."""

from molebench.store.run_store import SCORE_COLUMNS, RunStore

__all__ = ["SCORE_COLUMNS", "RunStore"]
