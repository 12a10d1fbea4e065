"""Statistics for comparing runs: seeded bootstrap CIs of a mean, paired differences, Wilcoxon, win rate, the
mean ± standard error of repeat means. One module below the store, runner and reports, so every number a run's
summary, `compare` and the report print is computed by the same code.

The bootstrap follows `scipy.stats.bootstrap` exactly (same index draws from `numpy.random.default_rng(seed)`, same
percentile and BCa intervals, same linear quantiles), so a CI can be checked against scipy; it is written out here
because the mean allows closed-form jackknife values and chunked resampling, which keeps memory bounded on
thousands of prompts. The unit of analysis is the prompt: callers average seeds per prompt first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

DEFAULT_RESAMPLES = 9999
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 0
METHODS = ("bca", "percentile")
_CHUNK_CELLS = 4_000_000  # resampled values held at once (32 MB of int64 indices)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval."""

    estimate: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class PairedResult:
    """Candidate minus reference over paired units (prompts)."""

    difference: Interval  # mean of per-unit differences, bootstrap CI
    p_value: float  # Wilcoxon signed-rank, two-sided unless stated
    win_rate: float  # share of units where the candidate scores higher; ties count one half
    n: int

    def significant(self, alpha: float) -> bool:
        """Both tests agree: Wilcoxon rejects at `alpha` and the bootstrap CI excludes zero."""
        d = self.difference
        return bool(self.p_value < alpha and (d.low > 0 or d.high < 0))


def bootstrap_means(values: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """Means of `n_resamples` resamples drawn with replacement, in scipy's draw order."""
    x = np.asarray(values, dtype=np.float64)
    n = x.shape[-1]
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_CELLS // max(n, 1))
    out = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, rows):
        count = min(rows, n_resamples - start)
        index = rng.integers(0, n, (count, n))
        out[start : start + count] = x[index].mean(axis=-1)
    return out


def mean_ci(
    values,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    method: str = "bca",
) -> Interval:
    """Mean with a two-sided bootstrap CI (BCa by default, as scipy). Constant data give a zero-width CI."""
    x = _finite(values)
    n = x.size
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    estimate = float(x.mean())
    if n == 1 or np.all(x == x[0]):
        return Interval(estimate, estimate, estimate, n)
    if method not in METHODS:
        raise ValueError(f"bootstrap method must be one of {METHODS}, got {method!r}")
    means = bootstrap_means(x, n_resamples, seed)
    alpha = (1 - confidence) / 2
    low_q, high_q = alpha, 1 - alpha
    if method == "bca":
        bca = _bca_levels(x, estimate, means, alpha)
        if all(np.isfinite(bca)):  # else (every resample on one side of the estimate) the percentile levels
            low_q, high_q = bca
    low, high = np.quantile(means, [low_q, high_q])
    return Interval(estimate, float(low), float(high), n)


def _bca_levels(x: np.ndarray, estimate: float, means: np.ndarray, alpha: float) -> tuple[float, float]:
    """Bias-corrected and accelerated quantile levels (Efron & Tibshirani 14.3), as scipy computes them."""
    below = np.count_nonzero(means < estimate) + np.count_nonzero(means <= estimate)
    z0 = special.ndtri(below / (2 * means.size))
    n = x.size
    jackknife = (x.sum() - x) / (n - 1)  # the mean with each value left out, in closed form
    u = (n - 1) * (jackknife.mean() - jackknife)
    spread = np.sum(u**2) / n**2
    # values that differ only in their last bits (two runs offset by a constant) can round every leave-one-out mean
    # to the same number: no measurable skew, so no acceleration (0/0 would make every level NaN)
    accel = (np.sum(u**3) / n**3) / spread**1.5 / 6 if spread > 0 else 0.0
    z_alpha = special.ndtri(alpha)
    levels = []
    for z in (z_alpha, -z_alpha):
        num = z0 + z
        levels.append(float(special.ndtr(z0 + num / (1 - accel * num))))
    return levels[0], levels[1]


def wilcoxon_p(differences, alternative: str = "two-sided") -> float:
    """Wilcoxon signed-rank p-value (scipy; zero differences dropped, Wilcox). All-zero differences give 1.0."""
    d = _finite(differences)
    if d.size == 0 or not np.any(d != 0):
        return 1.0
    return float(stats.wilcoxon(d, zero_method="wilcox", alternative=alternative).pvalue)


def win_rate(candidate, reference) -> float:
    """Share of pairs where the candidate is higher, ties counted as one half."""
    c, r = np.asarray(candidate, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if c.size == 0:
        return float("nan")
    return float((np.count_nonzero(c > r) + 0.5 * np.count_nonzero(c == r)) / c.size)


def paired(
    candidate,
    reference,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    method: str = "bca",
) -> PairedResult:
    """Candidate vs reference on aligned units: mean difference with CI, Wilcoxon p, win rate."""
    c, r = np.asarray(candidate, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if c.shape != r.shape:
        raise ValueError(f"paired data must align: {c.shape} vs {r.shape}")
    keep = np.isfinite(c) & np.isfinite(r)
    c, r = c[keep], r[keep]
    difference = mean_ci(c - r, confidence, n_resamples, seed, method)
    return PairedResult(difference, wilcoxon_p(c - r), win_rate(c, r), int(c.size))


def _finite(values) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    return x[np.isfinite(x)]


def mean_se(means: list[float]) -> tuple[float, float]:
    """Mean of repeat means and its standard error (sample s.d., ddof=1, / sqrt(repeats)); s.e. NaN for one."""
    se = float(np.std(means, ddof=1) / np.sqrt(len(means))) if len(means) > 1 else float("nan")
    return float(np.mean(means)), se


def decimals(values: list[float]) -> int:
    """The precision a mean is printed with everywhere (summary, compare, report): two decimals when the largest
    |value| is ≥ 10 (HPS ×100), three below (ImageReward)."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    return 2 if finite and max(finite) >= 10 else 3


Z95 = float(special.ndtri(0.975))


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (nan, nan) when n == 0."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def fleiss_kappa(counts: np.ndarray) -> tuple[float, float]:
    """(P-bar, kappa) from an items x categories matrix of rater counts; items need >= 2 raters each."""
    counts = np.asarray(counts, dtype=float)
    per_item = counts.sum(axis=1)
    if counts.size == 0 or (per_item < 2).any():
        raise ValueError("Fleiss' kappa needs at least one item and two ratings per item")
    agreement = ((counts * (counts - 1)).sum(axis=1) / (per_item * (per_item - 1))).mean()
    shares = counts.sum(axis=0) / per_item.sum()
    expected = float((shares ** 2).sum())
    kappa = math.nan if math.isclose(expected, 1.0) else (agreement - expected) / (1 - expected)
    return float(agreement), float(kappa)
