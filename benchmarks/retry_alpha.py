"""What re-running with new seeds until an input certifies does to alpha: measured, with the library's own bound.

An input whose true top-class probability ``p1`` sits just below the
threshold ``t`` of a radius must not be certified there; one run certifies it
with probability at most ``alpha``.  A user who re-runs with a new seed until it
certifies (up to ``k`` tries) certifies it with probability
``1 - (1 - q)^k``, where ``q <= alpha`` is one run's.  Over a population of
inputs whose ``p1`` is spread around the threshold, the wrong rate among the
certificates grows too.  This script measures both with
``renyicert.confidence.clopper_pearson_lower`` (the bound ``certify`` uses),
printing a table and a JSON line.

Run: ``python benchmarks/retry_alpha.py`` (about 10 s on 2 cores).
"""

from __future__ import annotations

import json

import numpy as np

from renyicert.confidence import clopper_pearson_lower

ALPHA = 0.05
N = 1000
TRIES = (1, 2, 5, 10, 20)
INPUTS = 20_000


def wrong_rates(p1: np.ndarray, threshold: float, rng: np.random.Generator) -> dict[int, float]:
    """Per number of tries: the share of inputs with true ``p1 <= threshold`` certified (``p1_lower > threshold``) within that many runs."""
    certified_by = np.full(p1.shape, np.inf)
    for attempt in range(1, max(TRIES) + 1):
        successes = rng.binomial(N, p1)
        certified = clopper_pearson_lower(successes, N, ALPHA) > threshold
        certified_by = np.where(certified & np.isinf(certified_by), attempt, certified_by)
    wrong = p1 <= threshold
    return {k: float((certified_by[wrong] <= k).mean()) for k in TRIES}


def main() -> None:
    rng = np.random.default_rng(0)
    threshold = 0.7
    at_threshold = wrong_rates(np.full(INPUTS, threshold), threshold, rng)
    population = wrong_rates(rng.uniform(threshold - 0.05, threshold, INPUTS), threshold, rng)
    print(
        f"alpha = {ALPHA}, n = {N}, threshold t = {threshold}: share of inputs that must not certify (p1 <= t) certified within k runs"
    )
    print(f"{'tries k':>8} {'p1 = t':>10} {'p1 ~ U(t-0.05, t)':>20} {'1-(1-alpha)^k':>15}")
    for k in TRIES:
        print(f"{k:>8} {at_threshold[k]:>10.3f} {population[k]:>20.3f} {1 - (1 - ALPHA) ** k:>15.3f}")
    print(
        json.dumps(
            {"benchmark": "retry_alpha", "alpha": ALPHA, "n": N, "at_threshold": at_threshold, "population": population}
        )
    )


if __name__ == "__main__":
    main()
