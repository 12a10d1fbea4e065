"""Shared infrastructure of the model and scorer layers: what both need to find, identify and build weights.

- `dtypes`: the precision names a run records and the torch dtypes they mean;
- `fetch`: the command that puts a hub repository's files into the Hugging Face cache (errors quote it);
- `weights`: local lookup (explicit path, `MOLEBENCH_WEIGHTS_<NAME>`, the HF cache), presence status, sha256;
- `materialize`: tiny seeded models built once into the molebench cache;
- `clip_tokenizer`: a CLIP BPE tokenizer written without a download (tiny text encoders, tiny CLIP scorers).

It sits below `molebench.models` and `molebench.scoring` and imports neither (tests/project/test_imports.py checks it), so
a scorer never depends on the model layer for infrastructure, and either layer can change without the other.
"""
