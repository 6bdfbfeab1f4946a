"""Decision thresholds per machine ID, calibrated on training (normal) scores only.

A score alone does not tell a plant engineer whether to act: −log p of STgram-MFN or a
reconstruction error have no natural cut-off. As the DCASE 2021–2024 baselines do, the
default fits a gamma distribution to an ID's training scores (``scipy.stats.gamma.fit``,
location free) and takes its ``q`` quantile (0.9): about one normal clip in ten is flagged.
``quantile`` takes the empirical quantile instead, ``mad`` the median plus the normal
quantile ``z_q`` times the scaled median absolute deviation (robust to a few odd clips).
No test clip is ever seen.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats

from asdbench.errors import AsdbenchError

RULES = ("gamma", "quantile", "mad")
MAD_TO_SIGMA = 1.4826  # the MAD of a normal distribution times this is its standard deviation


def threshold(scores: np.ndarray, rule: str, q: float, where: str = "") -> float:
    """The decision threshold of one machine ID from its training scores (``where`` names it in errors)."""
    scores = np.asarray(scores, dtype=np.float64)
    if rule not in RULES:
        raise AsdbenchError(f"threshold.rule={rule!r} is not one of: {', '.join(RULES)}")
    if not 0.0 < q < 1.0:
        raise AsdbenchError(f"threshold.q={q} must lie strictly between 0 and 1")
    if len(scores) == 0 or not np.isfinite(scores).all():
        raise AsdbenchError(f"no finite training scores to calibrate the threshold of {where}")
    if np.ptp(scores) == 0.0:
        return float(scores[0])  # every training clip scored alike: no spread to fit
    if rule == "quantile":
        return float(np.quantile(scores, q))
    if rule == "mad":
        median = np.median(scores)
        return float(median + stats.norm.ppf(q) * MAD_TO_SIGMA * np.median(np.abs(scores - median)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the optimiser's overflow probes on wide score ranges
        shape, loc, scale = stats.gamma.fit(scores)
    value = float(stats.gamma.ppf(q, shape, loc=loc, scale=scale))
    if not math.isfinite(value):
        raise AsdbenchError(f"the gamma fit of {where}'s training scores failed; use --set threshold.rule=quantile")
    return value
