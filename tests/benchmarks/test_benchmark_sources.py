"""Prompt-set sources: the downloader (local HTTP server on loopback), full DiffusionDB metadata with its NSFW
column (parquet and CSV), DiffusionDB part files, and clear errors for malformed input."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import re
import threading
import zipfile
from pathlib import Path

import pytest

from conftest import exit_code_and_error
from molebench.benchmarks.builder import build, built_paths
from molebench.benchmarks.definition import definitions_dir
from molebench.cli import main
from test_benchmarks import reference_select, reference_words


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> Path:
    """A private cache so these builds never replace the sets other tests read."""
    monkeypatch.setenv("MOLEBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path


# ---------------------------------------------------------------- downloader

class _Files(http.server.BaseHTTPRequestHandler):
    """Serves `files` from memory and honours `Range: bytes=N-` (206), like the COCO and hub servers do."""

    files: dict[str, bytes] = {}
    seen: list[tuple[str, str | None]] = []
    ranges = True  # False: answer every request with the whole file (200), as servers without Range support do

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.seen.append((self.path, self.headers.get("Range")))
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and self.ranges:
            start = int(match.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    _Files.files, _Files.seen, _Files.ranges = {}, [], True
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Files
    httpd.shutdown()
    httpd.server_close()


def _definitions(folder: Path, name: str, **values) -> Path:
    """A copy of the shipped NAME.toml with some `key = value` lines replaced (the rest, words included, unchanged)."""
    text = (definitions_dir() / f"{name}.toml").read_text()
    for key, value in values.items():
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {json.dumps(value)}", text)
        assert n == 1, key
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.toml").write_text(text)
    return folder


def _coco_archive(shared_data) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as bundle:
        bundle.writestr("annotations/captions_val2017.json", (shared_data / "coco/captions_val2017.json").read_bytes())
    return buffer.getvalue()


@pytest.mark.parametrize("ranges", [True, False], ids=["resumed", "server-without-range"])
def test_download_verify_extract_then_build(isolated, server, shared_data, monkeypatch, capsys, ranges):
    url, handler = server
    handler.ranges = ranges
    archive = _coco_archive(shared_data)
    handler.files["/annotations_trainval2017.zip"] = archive
    defs = _definitions(isolated / "defs", "coco-human", url=f"{url}/annotations_trainval2017.zip",
                        archive="annotations_trainval2017.zip", archive_md5=hashlib.md5(archive).hexdigest(),
                        archive_bytes=len(archive), member="annotations/captions_val2017.json",
                        default_file="captions_val2017.json")
    monkeypatch.setenv("MOLEBENCH_PROMPTS_DIR", str(defs))
    folder = isolated / "cache" / "downloads" / "coco-human"
    folder.mkdir(parents=True)
    (folder / "annotations_trainval2017.zip.part").write_bytes(archive[:100_000])  # an interrupted download

    main(["prompts", "build", "coco-human"])
    downloaded = capsys.readouterr().out
    assert handler.seen == [("/annotations_trainval2017.zip", "bytes=100000-")], "asked to resume where it stopped"
    assert sorted(p.name for p in folder.iterdir()) == ["captions_val2017.json"], "archive removed, member kept"
    assert (folder / "captions_val2017.json").read_bytes() == (shared_data / "coco/captions_val2017.json").read_bytes()

    local = build("coco-human", [shared_data / "coco/captions_val2017.json"])
    assert f"sha256 {local.prompt_set.sha256}" in downloaded, "download and --source give the same set"
    main(["prompts", "build", "coco-human"])
    assert len(handler.seen) == 1, "a verified cached file is not downloaded again"
    info = json.loads(built_paths("coco-human")[1].read_text())
    assert info["source"]["downloaded"] is True and info["source"]["files"][0]["matches_official"] is True


def test_download_with_wrong_checksum_is_rejected(isolated, server, shared_data, monkeypatch, capsys):
    url, handler = server
    handler.files["/metadata.parquet"] = b"not the official file"
    defs = _definitions(isolated / "defs", "diffusiondb-human", url=f"{url}/metadata.parquet")
    with (defs / "diffusiondb-human.toml").open("a") as handle:
        handle.write('\n[source.official_md5]\n"metadata.parquet" = "0123456789abcdef0123456789abcdef"\n')
    monkeypatch.setenv("MOLEBENCH_PROMPTS_DIR", str(defs))
    code, err = exit_code_and_error(capsys, "prompts", "build", "diffusiondb-human")
    assert code == 1 and "failed verification" in err and "0123456789abcdef0123456789abcdef" in err
    folder = isolated / "cache" / "downloads" / "diffusiondb-human"
    assert list(folder.iterdir()) == [], "neither the bad file nor its .part is kept"
    assert not built_paths("diffusiondb-human")[0].exists()


def test_unreachable_source_says_how_to_continue(isolated, monkeypatch, capsys):
    defs = _definitions(isolated / "defs", "diffusiondb-human", url="http://127.0.0.1:9/metadata.parquet")
    monkeypatch.setenv("MOLEBENCH_PROMPTS_DIR", str(defs))
    code, err = exit_code_and_error(capsys, "prompts", "build", "diffusiondb-human")
    assert code == 1 and "could not download http://127.0.0.1:9/metadata.parquet" in err and "--source" in err


# ---------------------------------------------------------------- full DiffusionDB metadata: NSFW filter

def _metadata_frame(shared_data):
    """Real prompts with the metadata's columns; the NSFW scores are synthetic (a hash of the id), some missing."""
    import pandas as pd

    records = json.loads((shared_data / "diffusiondb/imagereward_refl_data.json").read_text())
    rows = []
    for record in records:
        score = int(hashlib.sha256(record["image"].encode()).hexdigest()[:4], 16) / 0xFFFF
        rows.append({"image_name": record["image"], "prompt": record["text"],
                     "prompt_nsfw": None if score > 0.97 else round(score / 2, 4), "part_id": 1})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_metadata_with_nsfw_scores(isolated, shared_data, suffix):
    frame = _metadata_frame(shared_data)
    path = isolated / f"metadata.{suffix}"
    frame.to_parquet(path) if suffix == "parquet" else frame.to_csv(path, index=False)
    result = build("diffusiondb-human", [path])
    info = result.info

    unknown = frame["prompt_nsfw"].isna()
    over = frame["prompt_nsfw"] > 0.2
    assert info["counts"]["dropped_nsfw_unknown"] == int(unknown.sum()) > 0
    assert info["counts"]["dropped_nsfw"] == int(over.sum()) > 0
    assert info["notes"] == [] and info["source"]["files"][0]["nsfw_filter"] == "applied: kept prompt_nsfw <= 0.2"
    kept = frame[~unknown & ~over]
    rows = [((r.image_name, " ".join(r.prompt.split())), r.image_name, None, r.prompt) for r in kept.itertuples()]
    counts, expected = reference_select(rows, reference_words("diffusiondb-human"), seed=0, size=1000,
                                        prefix="ddb", one_per_group=False)
    assert info["counts"]["pool"] == counts["pool"]
    assert [(i.id, i.prompt) for i in result.prompt_set.items] == [(e[0], e[1]) for e in expected]
    assert all(re.fullmatch(r"ddb-\d{6}-\d{4}", item.id) for item in result.prompt_set.items), "ids kept as text"


def test_diffusiondb_part_file(isolated, shared_data):
    records = json.loads((shared_data / "diffusiondb/imagereward_test.json").read_text())
    part = {f"{r['id']}.webp": {"p": r["prompt"], "se": 1, "c": 7.0, "st": 50, "sa": 8} for r in records}
    path = isolated / "part-000001.json"
    path.write_text(json.dumps(part))
    result = build("diffusiondb-human", [path])
    ids = {item.meta["source_id"] for item in result.prompt_set.items}
    assert ids and ids <= set(part)
    assert all(item.prompt == " ".join(part[item.meta["source_id"]]["p"].split()) for item in result.prompt_set.items)


# ---------------------------------------------------------------- malformed input: one clear error each

def _coco_json(annotations) -> str:
    return json.dumps({"info": {"description": "COCO 2017 Dataset"}, "images": [], "annotations": annotations})


MALFORMED = [
    ("coco-human", "captions_val2017.json", "{not json", "not valid JSON"),
    ("coco-human", "captions_val2017.json", "[1, 2]", "not a COCO annotation file"),
    ("coco-human", "captions_val2017.json", _coco_json([{"id": 1, "image_id": 2, "bbox": [0, 0, 1, 1]}]),
     "annotation 1 has no text 'caption'"),
    ("coco-human", "captions_val2017.json", _coco_json([{"id": 1, "caption": "a man"}]), "lacks 'id' or 'image_id'"),
    ("coco-human", "captions_val2017.json", _coco_json([{"id": 1, "image_id": 2, "caption": "A red bus."}]),
     "no prompts left after filtering"),
    ("diffusiondb-human", "prompts.json", "[{\"prompt\": \"a man\"", "not valid JSON"),
    ("diffusiondb-human", "prompts.json", "[{\"caption\": \"a man\", \"id\": \"1\"}]", "no prompt column"),
    ("diffusiondb-human", "prompts.json", "[{\"prompt\": \"   \", \"id\": \"1\"}, {\"prompt\": \"a cat\"}]",
     "no prompts left after filtering"),
    ("diffusiondb-human", "metadata.parquet", "PAR1 this is not parquet", "not valid parquet"),
    ("diffusiondb-human", "prompts.txt", "a man", "unsupported file type"),
]


@pytest.mark.parametrize("name,filename,content,problem", MALFORMED)
def test_malformed_source_names_file_and_problem(isolated, capsys, name, filename, content, problem):
    path = isolated / filename
    path.write_text(content)
    code, err = exit_code_and_error(capsys, "prompts", "build", name, "--source", str(path))
    assert code == 1 and problem in err and path.name in err and "Traceback" not in err
    assert not built_paths(name)[0].exists(), "a failed build writes nothing"


def test_bad_names_and_definitions(isolated, monkeypatch, capsys):
    code, err = exit_code_and_error(capsys, "prompts", "build", "coco-humans", "--source", "x.json")
    assert code == 1 and "no prompt-set definition 'coco-humans'" in err and "coco-human" in err
    code, err = exit_code_and_error(capsys, "prompts", "build", "coco-human", "--source", str(isolated / "nope"))
    assert code == 1 and "not found" in err
    defs = isolated / "defs"
    defs.mkdir()
    (defs / "coco-human.toml").write_text("name = \"coco-human\"\nformat = [")
    monkeypatch.setenv("MOLEBENCH_PROMPTS_DIR", str(defs))
    code, err = exit_code_and_error(capsys, "prompts", "build", "coco-human", "--source", "x.json")
    assert code == 1 and "coco-human.toml: not valid TOML" in err
