"""Finding faces and hands: the detection layer under the human-centric scorers.

A detector turns images into `Region`s (part, box, presence, landmark quality, keypoints). Scorers that measure
people (`faces`, `hands`, region-aware scoring with `--regions`) ask a registered detector, so a better detector
replaces an older one by name, and its version (which hashes its weight files) is part of every score it produced.
"""

from molebench.scoring.detect.base import PARTS, Detector, Region

__all__ = ["PARTS", "Detector", "Region"]
