"""Hand anatomy plausibility from the 21 MediaPipe hand keypoints.

A generated hand can be found with confidence and still be wrong: a finger too long, a thumb as long as the middle
finger. Finger *lengths relative to the middle finger* are nearly constant across adults, so their deviation from
real-hand statistics is a detector-independent check of proportions (the idea behind the joint-ratio metrics of
"Annotated Hands for Generative Models", Yang, Gandhi & Turk, arXiv:2401.15075; that paper's exact statistic is not
reproduced here, see docs/scorers.md).

Definition. Each finger's length is the 3D path length along its keypoints from the knuckle to the tip (MediaPipe
order: thumb 2-3-4 (its knuckle, MCP, to the tip; point 1 is the base of the thumb's metacarpal, inside the palm),
index 5-6-7-8, middle 9-10-11-12, ring 13-14-15-16, little 17-18-19-20; z is the landmark
model's relative depth, in the same scale as x), so bending a finger does not change it. For the thumb, index, ring
and little finger, r = length / middle-finger length; z = (ln r - ln r0) / s, with r0 and s from real hands below;
the plausibility is the mean over the four fingers of the two-sided tail probability 2(1 - Phi(|z|)): 1 for typical
proportions, near 0 when a finger's proportion is outside what real adult hands show.

Real-hand statistics: mean finger lengths (mm, ± s.d.) of 51 young adults measured on hand photographs, Chatzioglou,
Pinar & Govsa, "Biometric analysis hand parameters in young adults", Anat Cell Biol 57(2):172-182, 2024
(doi:10.5115/acb.23.310): thumb 49.5 ± 5.5, index 63.9 ± 4.1, middle 70.7 ± 5.2, ring 65.5 ± 4.8, little
53.3 ± 4.3. s = sqrt(cv_finger^2 + cv_middle^2) treats the two lengths as independent, which overstates the spread
of a ratio (finger lengths of one hand are correlated): the check is lenient on purpose. The study measured surface
lengths from each finger's base crease, the keypoints run from the knuckle joint; the offset this leaves is part of
what docs/scorers.md reports as measured on real photographs.
"""

from __future__ import annotations

import math

import numpy as np

FINGERS: dict[str, tuple[int, ...]] = {
    "thumb": (2, 3, 4),
    "index": (5, 6, 7, 8),
    "middle": (9, 10, 11, 12),
    "ring": (13, 14, 15, 16),
    "little": (17, 18, 19, 20),
}
FINGER_LENGTH_MM: dict[str, tuple[float, float]] = {  # mean, s.d. (Chatzioglou et al. 2024)
    "thumb": (49.5, 5.5),
    "index": (63.9, 4.1),
    "middle": (70.7, 5.2),
    "ring": (65.5, 4.8),
    "little": (53.3, 4.3),
}


def _ratio_statistics() -> dict[str, tuple[float, float]]:
    """ln(mean ratio to the middle finger) and the s.d. of ln ratio, per finger other than the middle one."""
    middle, middle_sd = FINGER_LENGTH_MM["middle"]
    stats = {}
    for finger, (length, sd) in FINGER_LENGTH_MM.items():
        if finger != "middle":
            stats[finger] = (math.log(length / middle), math.hypot(sd / length, middle_sd / middle))
    return stats


RATIO_STATS = _ratio_statistics()


def finger_lengths(keypoints: np.ndarray) -> dict[str, float]:
    """3D path length of each finger from its knuckle to its tip (in the keypoints' units)."""
    points = np.asarray(keypoints, np.float64).reshape(-1, 3)
    if len(points) != 21:
        raise ValueError(f"hand anatomy needs 21 keypoints, got {len(points)}")
    return {finger: float(np.linalg.norm(np.diff(points[list(index)], axis=0), axis=1).sum())
            for finger, index in FINGERS.items()}


def finger_ratio_z(keypoints: np.ndarray) -> dict[str, float]:
    """z-score of each finger's length relative to the middle finger, against real hands."""
    lengths = finger_lengths(keypoints)
    if lengths["middle"] <= 0:
        return {finger: math.inf for finger in RATIO_STATS}
    return {finger: (math.log(max(lengths[finger], 1e-9) / lengths["middle"]) - mean) / sd
            for finger, (mean, sd) in RATIO_STATS.items()}


def hand_plausibility(keypoints: np.ndarray) -> float:
    """Mean two-sided tail probability of the four finger-length ratios under real-hand statistics, in [0, 1]."""
    z = np.abs(np.array(list(finger_ratio_z(keypoints).values())))
    return float(np.mean(np.array([math.erfc(v / math.sqrt(2)) for v in z])))
