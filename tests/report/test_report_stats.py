"""Report statistics equal scipy's own functions, and flag a real effect but not a null one."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from molebench import stats


def _scipy_ci(data, seed, method, n_resamples=9999, confidence=0.95, paired=False):
    if paired:
        ref, cand = data
        result = sps.bootstrap((ref, cand), lambda a, b, axis: np.mean(b - a, axis=axis), paired=True,
                               n_resamples=n_resamples, confidence_level=confidence, method=method,
                               rng=np.random.default_rng(seed))
    else:
        result = sps.bootstrap((data,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                               method=method, rng=np.random.default_rng(seed))
    return result.confidence_interval


@pytest.mark.parametrize("method", ["bca", "percentile"])
@pytest.mark.parametrize("n,seed", [(12, 0), (57, 3), (400, 11)])
def test_bootstrap_ci_equals_scipy(method, n, seed):
    x = np.random.default_rng(100 + n).gamma(2.0, 0.05, size=n)  # skewed, where BCa and percentile differ
    ours = stats.mean_ci(x, seed=seed, method=method)
    ref = _scipy_ci(x, seed, method)
    assert ours.estimate == pytest.approx(x.mean(), rel=1e-15)
    assert ours.low == pytest.approx(ref.low, rel=1e-12, abs=1e-15)
    assert ours.high == pytest.approx(ref.high, rel=1e-12, abs=1e-15)
    assert ours.n == n


def test_chunked_resampling_draws_like_scipy():
    # 3000 values x 2000 resamples is drawn in two chunks here and in one block by scipy: same indices, same CI
    x = np.random.default_rng(1).normal(size=3000)
    assert 3000 * 2000 > stats._CHUNK_CELLS
    ours = stats.mean_ci(x, n_resamples=2000, seed=7, confidence=0.9)
    ref = _scipy_ci(x, 7, "bca", n_resamples=2000, confidence=0.9)
    assert (ours.low, ours.high) == pytest.approx((ref.low, ref.high), rel=1e-12)


def test_paired_difference_ci_equals_scipy_paired_bootstrap():
    rng = np.random.default_rng(5)
    ref = rng.normal(0.25, 0.03, size=60)
    cand = ref + rng.normal(0.004, 0.01, size=60)
    result = stats.paired(cand, ref, seed=2)
    expected = _scipy_ci((ref, cand), 2, "bca", paired=True)
    assert result.difference.low == pytest.approx(expected.low, rel=1e-12)
    assert result.difference.high == pytest.approx(expected.high, rel=1e-12)
    assert result.difference.estimate == pytest.approx(np.mean(cand - ref), rel=1e-12)


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_wilcoxon_equals_scipy_including_zero_differences(alternative):
    rng = np.random.default_rng(9)
    d = np.round(rng.normal(0.2, 1.0, size=70), 1)  # ties and exact zeros, so scipy uses its approximation
    assert np.any(d == 0)
    expected = sps.wilcoxon(d, zero_method="wilcox", alternative=alternative).pvalue
    assert stats.wilcoxon_p(d, alternative) == pytest.approx(expected, rel=1e-12)
    small = rng.normal(0.5, 1.0, size=15)  # no ties: exact distribution
    assert stats.wilcoxon_p(small, alternative) == pytest.approx(
        sps.wilcoxon(small, alternative=alternative).pvalue, rel=1e-12)


def test_clear_improvement_is_flagged_and_identical_runs_are_not():
    rng = np.random.default_rng(0)
    ref = rng.normal(0.25, 0.02, size=50)
    better = ref + 0.01 + rng.normal(0, 0.004, size=50)
    improved = stats.paired(better, ref)
    assert improved.significant(0.05)
    assert improved.difference.low > 0 and improved.p_value < 1e-6 and improved.win_rate > 0.9

    same = stats.paired(ref.copy(), ref)
    assert not same.significant(0.05)
    assert same.p_value == 1.0 and same.win_rate == 0.5
    assert same.difference.low == same.difference.high == 0.0


def test_no_effect_is_not_flagged():
    rng = np.random.default_rng(42)
    ref = rng.normal(0.25, 0.02, size=80)
    noise = ref + rng.normal(0, 0.02, size=80)  # same mean: differences are pure noise
    result = stats.paired(noise, ref)
    assert not result.significant(0.05)
    assert result.difference.low < 0 < result.difference.high


def test_ci_coverage_is_near_nominal():
    """Independent of scipy: 95% intervals for a known mean cover it about 95% of the time."""
    rng = np.random.default_rng(123)
    covered = 0
    trials = 200
    for trial in range(trials):
        x = rng.normal(1.0, 2.0, size=40)
        ci = stats.mean_ci(x, n_resamples=999, seed=trial)
        covered += ci.low <= 1.0 <= ci.high
    assert 0.88 <= covered / trials <= 0.99


def test_win_rate_counts_ties_as_half():
    assert stats.win_rate([1, 2, 3, 4], [0, 2, 5, 4]) == pytest.approx((1 + 0.5 + 0 + 0.5) / 4)


def test_seed_makes_the_ci_reproducible_and_edge_cases_are_defined():
    x = np.random.default_rng(3).normal(size=30)
    assert stats.mean_ci(x, seed=4) == stats.mean_ci(x, seed=4)
    assert stats.mean_ci(x, seed=4) != stats.mean_ci(x, seed=5)
    assert stats.mean_ci([0.3]) == stats.Interval(0.3, 0.3, 0.3, 1)
    empty = stats.mean_ci([])
    assert empty.n == 0 and np.isnan(empty.estimate)
    with pytest.raises(ValueError, match="bootstrap method"):
        stats.mean_ci(x, method="basic")


def test_values_equal_up_to_rounding_give_a_finite_interval():
    """Two runs offset by a constant: per-prompt differences that differ only in their last bits once made the BCa
    acceleration 0/0 and every quantile level NaN (an exception instead of an interval)."""
    base = np.random.default_rng(0).normal(size=51)
    differences = (base + 1.7) - base  # three distinct values, 2.2e-16 apart
    assert np.unique(differences).size > 1  # not constant, so the bootstrap runs
    for method in ("bca", "percentile"):
        ci = stats.mean_ci(differences, method=method)
        assert np.isfinite([ci.low, ci.high]).all()
        assert ci.low <= ci.estimate <= ci.high
        assert abs(ci.estimate - 1.7) < 1e-12 and ci.high - ci.low < 1e-12
