"""DiffusionDB reader: the full metadata table (parquet/CSV) or prompt-only JSON lists, via pandas.

The NSFW filter needs the `prompt_nsfw` column of the full metadata; prompt-only files (such as the DiffusionDB
prompts republished by ImageReward) lack it, so for them the build info records that the filter was not applicable
instead of pretending it ran.
"""

from __future__ import annotations

from pathlib import Path

from molebench.benchmarks.source import Candidate, SourceRead, normalise
from molebench.benchmarks.definition import Definition
from molebench.benchmarks.download import file_digests
from molebench.errors import InputError

SUFFIXES = (".parquet", ".csv", ".json", ".jsonl")
DEFAULT_PROMPT_COLUMNS = ("prompt", "text")
DEFAULT_ID_COLUMNS = ("image_name", "id", "image")


def resolve(definition: Definition, paths: list[Path]) -> list[Path]:
    """Files as given; a folder contributes its parquet/CSV/JSON/JSONL files, sorted by name."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
            if not found:
                raise InputError(f"{path}: no DiffusionDB files in this folder ({', '.join(SUFFIXES)})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"DiffusionDB source not found: {path}")
    return files


def read(definition: Definition, paths: list[Path]) -> SourceRead:
    import pandas as pd

    source = definition.source
    prompt_columns = tuple(source.get("prompt_columns", DEFAULT_PROMPT_COLUMNS))
    id_columns = tuple(source.get("id_columns", DEFAULT_ID_COLUMNS))
    nsfw_column = source.get("nsfw_column", "prompt_nsfw")
    image_nsfw_column = source.get("image_nsfw_column", "image_nsfw")
    threshold = definition.max_prompt_nsfw
    candidates: list[Candidate] = []
    files, notes = [], []
    counts = {"source_rows": 0}
    for path in paths:
        frame = read_table(path, prompt_columns + id_columns + (nsfw_column, image_nsfw_column))
        prompt_column = next((c for c in prompt_columns if c in frame.columns), None)
        if prompt_column is None:
            raise InputError(f"{path}: no prompt column (looked for {', '.join(prompt_columns)}; "
                             f"found {', '.join(map(str, frame.columns)) or 'no columns'})")
        id_column = next((c for c in id_columns if c in frame.columns), None)
        counts["source_rows"] += len(frame)
        record = {"name": path.name, "path": str(path), **file_digests(path), "rows": len(frame),
                  "prompt_column": prompt_column, "id_column": id_column}
        if threshold is None:
            record["nsfw_filter"] = "not configured"
        elif nsfw_column in frame.columns:
            scores = pd.to_numeric(frame[nsfw_column], errors="coerce")
            unknown, over = scores.isna(), scores > threshold
            counts["dropped_nsfw"] = counts.get("dropped_nsfw", 0) + int((over & ~unknown).sum())
            counts["dropped_nsfw_unknown"] = counts.get("dropped_nsfw_unknown", 0) + int(unknown.sum())
            frame = frame[~(unknown | over)]
            record["nsfw_filter"] = f"applied: kept {nsfw_column} <= {threshold:g}"
        else:
            record["nsfw_filter"] = f"not applicable: no '{nsfw_column}' column (prompt-only source)"
            notes.append(f"nsfw filter not applicable to {path.name}: it has no '{nsfw_column}' column")
        if definition.max_image_nsfw is not None:
            frame = _image_nsfw_filter(frame, path, image_nsfw_column, definition.max_image_nsfw, record, counts,
                                       notes)
        ids = frame[id_column].tolist() if id_column else [None] * len(frame)
        for row, (raw_id, prompt) in enumerate(zip(ids, frame[prompt_column].tolist())):
            text = prompt if isinstance(prompt, str) else "" if _missing(prompt) else str(prompt)
            source_id = f"{path.name}:{row}" if _missing(raw_id) else str(raw_id)
            candidates.append(Candidate(source_id, text, (source_id, normalise(text))))
        files.append(record)
    return SourceRead(candidates, files, counts, notes)


def _image_nsfw_filter(frame, path: Path, column: str, threshold: float, record: dict, counts: dict, notes: list):
    """Drop rows whose image DiffusionDB scores above `threshold` (LAION's NSFW detector, 0..1; 2.0 = blurred by
    Stable Diffusion's own safety filter); prompt-only files say "not applicable" instead."""
    import pandas as pd

    if column not in frame.columns:
        record["image_nsfw_filter"] = f"not applicable: no '{column}' column (prompt-only source)"
        notes.append(f"image nsfw filter not applicable to {path.name}: it has no '{column}' column")
        return frame
    scores = pd.to_numeric(frame[column], errors="coerce")
    unknown, over = scores.isna(), scores > threshold
    counts["dropped_image_nsfw"] = counts.get("dropped_image_nsfw", 0) + int((over & ~unknown).sum())
    counts["dropped_image_nsfw_unknown"] = counts.get("dropped_image_nsfw_unknown", 0) + int(unknown.sum())
    record["image_nsfw_filter"] = f"applied: kept {column} <= {threshold:g}"
    return frame[~(unknown | over)]


def read_table(path: Path, wanted: tuple[str, ...]):
    """One metadata file as a DataFrame, strings kept as strings (ids like '000044-0048' stay intact)."""
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
            return pd.read_parquet(path, columns=[c for c in dict.fromkeys(wanted) if c in names] or None)
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        if suffix == ".jsonl":
            return pd.read_json(path, lines=True, dtype=False)
        if suffix == ".json":
            return _read_json(path)
    except InputError:
        raise
    except (ValueError, OSError, UnicodeDecodeError) as exc:  # pandas/pyarrow parse errors are ValueErrors
        kind = {".parquet": "parquet", ".csv": "CSV"}.get(suffix, "JSON")
        raise InputError(f"{path}: not valid {kind} ({type(exc).__name__}: {str(exc)[:200]})") from None
    raise InputError(f"{path}: unsupported file type '{suffix}' (use {', '.join(SUFFIXES)})")


def _read_json(path: Path):
    """A JSON list (of records or of prompt strings), or a DiffusionDB part file {image_name: {"p": prompt, ...}}."""
    import pandas as pd

    with open(path, encoding="utf-8-sig") as handle:
        head = handle.read(4096).lstrip()[:1]
    if head == "[":
        frame = pd.read_json(path, orient="records", dtype=False, encoding="utf-8-sig")
        if list(frame.columns) == [0]:
            frame = frame.rename(columns={0: "prompt"})
        return frame
    if head == "{":
        frame = pd.read_json(path, orient="index", dtype=False, encoding="utf-8-sig")
        if "p" not in frame.columns:
            raise InputError(f"{path}: a JSON object but not a DiffusionDB part file "
                             "(expected {image_name: {\"p\": prompt, ...}} or a list of records)")
        return frame.rename(columns={"p": "prompt"}).rename_axis("image_name").reset_index()
    raise InputError(f"{path}: not valid JSON (expected a list or an object)")


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)
