"""The report's faces-and-hands section: per run, what the detector found, so a reader sees what was measured.

For every run with stored detections (RUN/regions/, written by the `faces`, `hands` and NAME@part scorers) it shows
the worst and best face and hand crops, each with its own values, and a few images with every detection drawn (boxes,
face keypoints, the 21 hand keypoints joined as a skeleton). Crops are cut by the same rule region-aware scoring
uses (molebench.scoring.detect.found.crop_box), so a crop here is the crop that `hps-v2.1@hand` scored. Crops are
ranked by the landmark network's quality, or by the detector's presence where the detector gives no quality (faces
from a face detector without landmarks); `anatomy` is the finger-proportion plausibility of that one hand
(molebench.scoring.anatomy, from the stored keypoints).
"""

from __future__ import annotations

import math
from html import escape
from typing import Callable

import pandas as pd
from PIL import Image

from molebench.parts import PARTS
from molebench.report.images import png_data_uri
from molebench.report.people import part_scorer
from molebench.report.runs import LoadedRun
from molebench.scoring.anatomy import hand_plausibility
from molebench.scoring.detect.base import HAND_KEYPOINTS, Region
from molebench.scoring.detect.found import crop_box
from molebench.store import RunStore

CROP = 128  # px, longer side of a crop on the page
DRAWN = 256  # px, longer side of an image with its detections drawn
DRAWN_IMAGES = 4  # images with detections drawn, per run
COLOURS = {"face": "#1f77b4", "hand": "#d62728"}
# MediaPipe's 21 hand keypoints: wrist 0; thumb 1-4, index 5-8, middle 9-12, ring 13-16, little 17-20 (base to tip)
HAND_BONES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
              (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (17, 18), (18, 19), (19, 20), (0, 17)]
CSS = """
.crops{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-start}
figure.crop{margin:0;width:128px;font-size:.75rem;text-align:center}figure.crop img{width:128px;display:block}
figure.crop.worst{outline:2px solid #d62728}figure.crop.best{outline:2px solid #2ca02c}
figure.detections{margin:0;width:256px;font-size:.75rem}figure.detections svg{width:256px;height:auto;display:block}
"""


def section(runs: list[LoadedRun], top_k: int, swatch: Callable[[str], str]) -> str:
    """The section for every run that searched its images for faces or hands ('' when none did)."""
    blocks = [block for run in runs if (block := _run_block(run, top_k, swatch))]
    if not blocks:
        return ""
    return ("<h2 id='people'>Faces and hands: what was measured</h2><p class='note'>Per run, the worst and best "
            "crops of each part (ranked by the landmark quality, or by the detector's presence where it gives no "
            "quality) with their values, and images with every detection drawn: boxes, face keypoints, hand "
            "keypoints joined as a skeleton. Crops are cut as region-aware scoring (NAME@face, NAME@hand) cuts "
            "them.</p>" + "".join(blocks))


def searched(run: LoadedRun) -> bool:
    """Whether the run's images were searched for faces or hands (a people or region scorer was run)."""
    return any(isinstance(print_, dict) and isinstance(print_.get("detector"), dict)
               for print_ in run.scorer_prints.values())


def _run_block(run: LoadedRun, top_k: int, swatch: Callable[[str], str]) -> str:
    if not searched(run):
        return ""
    regions = _regions(run)
    images = int(run.items["key"].nunique())
    head = (f"<h3>{swatch(run.label)}{escape(run.label)} · {escape(run.benchmark)}</h3>")
    attrs = f"data-label='{escape(run.label)}' data-benchmark='{escape(run.benchmark)}'"
    if regions.empty:
        counted = _counted(run)
        why = (f"its scores count {counted} faces and hands, but no detections are stored in its regions/ folder "
               "(scored by a molebench that did not store them)" if counted else
               "face and hand qualities are not measured for this run (see the found_when_asked rates)")
        return (f"<div class='people' {attrs}>{head}<p class='note'>No detection to show in its {images} images: "
                f"{why}.</p></div>")
    cache: dict[str, Image.Image | None] = {}
    parts = [_part_crops(run, regions, part, top_k, images, cache) for part in PARTS]
    return (f"<div class='people' {attrs}>{head}{''.join(parts)}<h4>Detections drawn</h4><div class='crops'>"
            f"{_drawn(run, regions, cache)}</div></div>")


def _counted(run: LoadedRun) -> int:
    """Faces and hands the run's `faces` / `hands` scores count."""
    pairs = [(part_scorer(part), part_scorer(part)) for part in PARTS]
    return int(sum(run.values(*pair)["value"].sum() for pair in pairs if pair in run.metrics()))


def _regions(run: LoadedRun) -> pd.DataFrame:
    """The run's stored detections by the detector its scorers used, with the prompt and seed of each image."""
    regions = RunStore(run.root).read_regions()
    used = {p["detector"].get("version") for p in run.scorer_prints.values()
            if isinstance(p, dict) and isinstance(p.get("detector"), dict)}
    if used & set(regions["detector"]):
        regions = regions[regions["detector"].isin(used)]
    items = run.items[["key", "prompt_index", "prompt_id", "prompt", "seed"]].drop_duplicates("key")
    return regions.merge(items, on="key", how="inner").reset_index(drop=True)


def _values(row: pd.Series) -> dict[str, float]:
    """The values shown with a crop: presence, quality and, for a hand with 21 keypoints, anatomy."""
    region = Region.from_row(row)
    values = {"quality": region.quality, "presence": region.presence}
    if region.part == "hand" and len(region.keypoints) == HAND_KEYPOINTS:
        values["anatomy"] = hand_plausibility(region.keypoints)
    return values


def _part_crops(run: LoadedRun, regions: pd.DataFrame, part: str, top_k: int, images: int,
                cache: dict[str, Image.Image | None]) -> str:
    rows = regions[regions["part"] == part]
    found_in = rows["key"].nunique()
    title = f"<h4>{part}s: {len(rows)} found in {found_in} of {images} images</h4>"
    if rows.empty:
        return title
    rank = rows["quality"].where(rows["quality"].notna(), rows["presence"])  # no quality: the detector's presence
    ordered = rows.assign(rank=rank).sort_values(["rank", "prompt_index", "index"], ascending=[False, True, True],
                                                 kind="mergesort")
    best = list(ordered.index[:min(top_k, (len(ordered) + 1) // 2)])  # few crops: every one, the better half best
    worst = [i for i in ordered.index[::-1][:top_k] if i not in best]
    figures = [_crop_figure(run, ordered.loc[i], kind, cache) for kind, picks in (("worst", worst), ("best", best))
               for i in picks]
    return f"{title}<div class='crops' data-part='{part}'>{''.join(figures)}</div>"


def _image(run: LoadedRun, key: str, cache: dict[str, Image.Image | None]) -> Image.Image | None:
    if key not in cache:
        try:
            with Image.open(run.image_path(key)) as image:
                cache[key] = image.convert("RGB")
        except (OSError, ValueError):
            cache[key] = None
    return cache[key]


def _crop_figure(run: LoadedRun, row: pd.Series, kind: str, cache: dict[str, Image.Image | None]) -> str:
    values = _values(row)
    data = " ".join(f"data-{name}='{value:.6g}'" for name, value in values.items() if math.isfinite(value))
    caption = " · ".join(f"{name} {_num(value)}" for name, value in values.items())
    where = f"{escape(str(row['prompt_id']))} · seed {int(row['seed'])}"
    image = _image(run, row["key"], cache)
    if image is None:
        picture = f"<div class='missing'>image unavailable: {escape(str(row['key']))}</div>"
    else:
        uri = png_data_uri(image.crop(crop_box(Region.from_row(row), *image.size)), CROP)
        picture = f"<img class='crop' alt='{escape(row['part'])} in {escape(str(row['key']))}' src='{uri}'>"
    return (f"<figure class='crop {kind}' data-rank='{kind}' data-part='{escape(row['part'])}' "
            f"data-key='{escape(str(row['key']))}' {data} title='{escape(str(row['prompt']))}'>{picture}"
            f"<figcaption><b>{kind}</b> · {escape(caption)}<br>{where}</figcaption></figure>")


def _num(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.3f}"


def _drawn(run: LoadedRun, regions: pd.DataFrame, cache: dict[str, Image.Image | None]) -> str:
    """The images with the most detections (first prompts on ties), each with its detections drawn over it."""
    counts = regions.groupby("key").agg(n=("part", "size"), first=("prompt_index", "min"))
    keys = counts.sort_values(["n", "first"], ascending=[False, True], kind="mergesort").index[:DRAWN_IMAGES]
    return "".join(_drawn_figure(run, key, regions[regions["key"] == key], cache) for key in keys)


def _drawn_figure(run: LoadedRun, key: str, rows: pd.DataFrame, cache: dict[str, Image.Image | None]) -> str:
    image = _image(run, key, cache)
    if image is None:
        return f"<div class='missing'>image unavailable: {escape(key)}</div>"
    width, height = image.size
    dot = max(width, height) / 120
    marks = []
    for _, row in rows.iterrows():
        region, colour = Region.from_row(row), COLOURS.get(row["part"], "#000")
        x0, y0, x1, y1 = region.box
        marks.append(f"<rect class='box {escape(region.part)}' x='{x0:.1f}' y='{y0:.1f}' width='{x1 - x0:.1f}' "
                     f"height='{y1 - y0:.1f}' fill='none' stroke='{colour}' stroke-width='2' "
                     "vector-effect='non-scaling-stroke'/>")
        points = region.keypoints[:, :2]
        if region.part == "hand" and len(points) == HAND_KEYPOINTS:
            marks += [f"<line class='bone' x1='{points[a, 0]:.1f}' y1='{points[a, 1]:.1f}' x2='{points[b, 0]:.1f}' "
                      f"y2='{points[b, 1]:.1f}' stroke='{colour}' stroke-width='1.5' "
                      "vector-effect='non-scaling-stroke'/>" for a, b in HAND_BONES]
        marks += [f"<circle class='keypoint {escape(region.part)}' cx='{x:.1f}' cy='{y:.1f}' r='{dot:.1f}' "
                  f"fill='{colour}'/>" for x, y in points]
    faces, hands = (int((rows["part"] == part).sum()) for part in ("face", "hand"))
    first = rows.iloc[0]
    return (f"<figure class='detections' data-key='{escape(key)}' data-faces='{faces}' data-hands='{hands}'>"
            f"<svg viewBox='0 0 {width} {height}' xmlns='http://www.w3.org/2000/svg' role='img' "
            f"aria-label='detections in {escape(key)}'><image href='{png_data_uri(image, DRAWN)}' x='0' y='0' "
            f"width='{width}' height='{height}'/>{''.join(marks)}</svg><figcaption>{escape(str(first['prompt_id']))}"
            f" · seed {int(first['seed'])} · {faces} face{'s' * (faces != 1)}, {hands} hand{'s' * (hands != 1)}"
            f"<br>{escape(str(first['prompt']))}</figcaption></figure>")
