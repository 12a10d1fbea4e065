"""The CI regression gate: is the candidate significantly worse than the baseline?

Exit codes: 0 not significantly worse, 1 significantly worse, 2 the runs cannot be compared (any other failure too,
so a typo never reads as a regression). "Significantly worse" on a metric means both:
- the one-sided Wilcoxon signed-rank test of the per-prompt differences (candidate − baseline + max_drop) rejects
  "no worse than −max_drop" at level alpha, and
- the one-sided (1 − alpha) bootstrap upper bound of the mean difference is below −max_drop.
`max_drop` is in display units (HPS ×100), i.e. the drop you are willing to accept.

"Worse" follows each metric's direction (`higher_is_better` from the scorer fingerprint): for a lower-is-better
metric the test runs on baseline − candidate, so a rise is the drop. Metrics without a direction (face and hand
counts) are listed but never gated. A metric measured only where a face or hand was found (`hand_quality`,
`hps-v2.1@hand`) is paired over the images where both runs found one (NaN is "not measured", see LoadedRun.values);
its rate (`hand_found_when_asked`) is gated beside it, so a candidate that stops finding hands fails on the rate.
Set-level metrics (FID, KID: one value per run, no per-prompt pairs, so no test) are gated by threshold: worse when
the candidate is worse than the baseline by more than `max_drop` (e.g. FID up by more than `--max-drop`); with the
default 0 any worsening fails, so give a tolerance that suits the image count.
"""

from __future__ import annotations

from dataclasses import dataclass

from molebench.errors import IncompatibleRunsError
from molebench import stats
from molebench.report.compare import Settings, differences, select_metrics
from molebench.report.runs import LoadedRun, per_prompt, shared_pairs, shared_scale
from molebench.report.settings import setting_differences

PASS, WORSE, CANNOT_COMPARE = 0, 1, 2


@dataclass
class GateResult:
    scorer: str
    metric: str
    scale: float
    n_pairs: int
    baseline_mean: float  # display units, over the paired prompts
    candidate_mean: float
    diff: float
    upper: float  # one-sided (1 − alpha) bootstrap upper bound of the mean difference
    p_value: float  # one-sided Wilcoxon, H1: difference < −max_drop
    max_drop: float
    worse: bool
    higher_is_better: bool | None = True
    level: str = "image"

    def describe(self, alpha: float) -> str:
        unit = f" ×{self.scale:g}" if self.scale != 1 else ""
        if self.higher_is_better is None:
            return (f"{self.scorer}/{self.metric}{unit}: candidate {self.candidate_mean:.4f} vs baseline "
                    f"{self.baseline_mean:.4f}; not gated (the metric has no better direction)")
        if self.level == "image" and self.n_pairs == 0:  # e.g. a hand quality where neither run found a hand
            return (f"{self.scorer}/{self.metric}{unit}: no image has a value in both runs (a face or hand metric: "
                    "the part was not found in both); nothing to gate, see its found_when_asked rate")
        way = "" if self.higher_is_better else " (lower is better: the gain is baseline − candidate)"
        if self.level == "set":
            verdict = "WORSE" if self.worse else "not worse"
            return (f"{self.scorer}/{self.metric}{unit} (set-level, one value per run, threshold gate){way}: "
                    f"candidate {self.candidate_mean:.4f} vs baseline {self.baseline_mean:.4f} over {self.n_pairs} "
                    f"images; gain {self.upper:+.4f}, allowed drop {self.max_drop:g} → {verdict}")
        verdict = "SIGNIFICANTLY WORSE" if self.worse else "not significantly worse"
        why = (f"p={self.p_value:.4g} < α={alpha:g} and upper bound {self.upper:+.4f} < −{self.max_drop:g}"
               if self.worse else self._why_not(alpha))
        return (f"{self.scorer}/{self.metric}{unit}: candidate {self.candidate_mean:.4f} vs baseline "
                f"{self.baseline_mean:.4f} over {self.n_pairs} prompts{way}; gain {self.diff:+.4f} "
                f"(one-sided {1 - alpha:.0%} upper bound {self.upper:+.4f}), Wilcoxon one-sided p={self.p_value:.4g}, "
                f"allowed drop {self.max_drop:g} → {verdict} ({why})")

    def _why_not(self, alpha: float) -> str:
        reasons = []
        if self.p_value >= alpha:
            reasons.append(f"p={self.p_value:.4g} ≥ α={alpha:g}")
        if self.upper >= -self.max_drop:
            reasons.append(f"upper bound {self.upper:+.4f} ≥ −{self.max_drop:g}")
        return " and ".join(reasons)


def gate(
    baseline: LoadedRun,
    candidate: LoadedRun,
    metrics: list[str] | None = None,
    max_drop: float = 0.0,
    alpha: float = 0.05,
    settings: Settings | None = None,
) -> list[GateResult]:
    """One result per gated metric; raises IncompatibleRunsError when the runs cannot be compared."""
    if max_drop < 0:
        raise IncompatibleRunsError(f"--max-drop must be ≥ 0 (a tolerated drop), got {max_drop}")
    if not 0 < alpha < 0.5:
        raise IncompatibleRunsError(f"--alpha must be in (0, 0.5), got {alpha}")
    settings = settings or Settings()
    baseline.label, candidate.label = baseline.label or "baseline", candidate.label or "candidate"
    found = differences([baseline, candidate])
    if found:
        raise IncompatibleRunsError("baseline and candidate cannot be compared:\n  - " + "\n  - ".join(found))
    shared = [p for p in baseline.metrics() if p in candidate.metrics()]
    shared_sets = [p for p in baseline.set_metrics() if p in candidate.set_metrics()]
    results = []
    for scorer, metric in select_metrics(shared + shared_sets, metrics):
        scale = shared_scale([baseline, candidate], scorer, metric)
        direction = baseline.higher_is_better(scorer, metric)
        sign = -1.0 if direction is False else 1.0  # the gain: candidate − baseline, or its negative for ↓ metrics
        if (scorer, metric) in shared_sets:
            base_value = float(baseline.set_value(scorer, metric)["value"])
            cand_row = candidate.set_value(scorer, metric)
            gain = sign * (float(cand_row["value"]) - base_value) * scale
            results.append(GateResult(scorer, metric, scale, int(cand_row["n"]), base_value * scale,
                                      float(cand_row["value"]) * scale, gain, gain, float("nan"), max_drop,
                                      direction is not None and gain < -max_drop, direction, "set"))
            continue
        pairs = shared_pairs([baseline, candidate], scorer, metric)
        base = per_prompt(baseline.values(scorer, metric), pairs)
        cand = per_prompt(candidate.values(scorer, metric), pairs).reindex(base.index)
        d = sign * (cand - base).to_numpy()
        tolerance = max_drop / scale
        p = stats.wilcoxon_p(d + tolerance, alternative="less")
        ci = stats.mean_ci(d, 1 - 2 * alpha, settings.n_resamples, settings.seed, settings.method)
        worse = bool(direction is not None and p < alpha and ci.high < -tolerance)
        results.append(GateResult(scorer, metric, scale, int(d.size), float(base.mean() * scale),
                                  float(cand.mean() * scale), ci.estimate * scale, ci.high * scale, p, max_drop, worse,
                                  direction))
    return results


def setting_warnings(baseline: LoadedRun, candidate: LoadedRun) -> list[str]:
    """Settings other than the model that differ (prompt text, steps, ...): the gate still runs, but a drop may
    come from them rather than from the checkpoint."""
    return setting_differences([baseline, candidate])


def exit_code(results: list[GateResult]) -> int:
    return WORSE if any(r.worse for r in results) else PASS
