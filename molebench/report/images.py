"""Images embedded in the report page: downscaled PNGs as data URIs, so the page stays one self-contained file."""

from __future__ import annotations

import base64
import io

from PIL import Image


def png_data_uri(image: Image.Image, longest: int) -> str:
    """`image` with its longer side at `longest` px (bicubic down, nearest up: tiny images stay crisp), as a
    `data:image/png;base64,...` URI."""
    image = image.convert("RGB")
    scale = longest / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    image = image.resize(size, Image.Resampling.BICUBIC if scale < 1 else Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
