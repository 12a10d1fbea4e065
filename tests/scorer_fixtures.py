"""Images and prompts the scorer tests share: real photographs from scikit-image at several sizes and modes, and
prompts that exercise truncation (longer than 35 BERT and 77 CLIP tokens), repetition and odd characters."""

from __future__ import annotations

import numpy as np
from PIL import Image

LONG_PROMPT = ("a detailed cinematic portrait photograph of an elderly woman with silver hair laughing with her "
               "grandchildren at a crowded street market at sunset, warm light, shallow depth of field, film grain, "
               "85mm lens, highly detailed skin texture, natural hands with five fingers each, award winning photo "
               "taken in the old town square next to the fountain with pigeons everywhere")


def parity_images() -> list[Image.Image]:
    """Ten images: square and non-square RGB (larger and smaller than 224 px), and a greyscale one."""
    from skimage import data

    astronaut = Image.fromarray(data.astronaut())
    coffee = Image.fromarray(data.coffee())
    cat = Image.fromarray(data.chelsea())
    camera = Image.fromarray(data.camera())  # greyscale, mode L
    rng = np.random.default_rng(7)
    noise = Image.fromarray(rng.integers(0, 256, (97, 131, 3), dtype=np.uint8))
    return [
        astronaut,
        coffee,
        cat,
        camera,
        astronaut.resize((300, 200)),
        coffee.crop((100, 50, 260, 400)),  # tall
        cat.resize((64, 64)),
        noise,
        astronaut.crop((150, 0, 400, 250)).resize((512, 512)),
        Image.new("RGB", (240, 180), (90, 140, 200)),
    ]


PARITY_PROMPTS = [
    "A cat with two horns on its head",
    "a woman smiling, portrait photo",
    "a cat",
    "black and white photo of a man with a camera",
    LONG_PROMPT,
    "a cup of coffee on a table",
    "a cat",
    "random noise",
    "Close-up portrait of an astronaut — détaillé, 4K!",
    "a blue sky",
]
