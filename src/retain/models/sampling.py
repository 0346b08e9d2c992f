"""Which customers a large training run learns from: a seeded sample, the same in every engine.

Above a few hundred thousand customers, more training rows stop paying for themselves: the
models' inputs are a few dozen per-customer numbers, and their validation metrics settle well
before (see ``benchmarks/training.py`` and the lean-path table of ``benchmarks/accuracy.py``).
So when a history holds more customers with a purchase than ``max_customers``, the training
table is built for a sample of them, at every cutoff.

The sample is drawn by a hash of the customer id (seeded by ``random_state``) against a rate,
not by a random generator over a sorted list: a customer is in or out by their id alone, so the
local engine and every Spark partition agree on the sample without talking to each other, and a
customer is on the same side at every cutoff. It is a uniform sample of customers; every row of a
sampled customer is kept, so no customer's history is thinned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

__all__ = ["CustomerSample", "customer_sample", "in_sample"]

_TWO_TO_64: Final = float(2**64)


@dataclass(frozen=True)
class CustomerSample:
    """A sample rule: customers whose id hashes below ``rate`` (of 1) are in.

    ``population``: customers with a purchase on or before the as-of day; ``rate`` 1.0 keeps
    everybody (no sampling)."""

    population: int
    rate: float
    random_state: int

    @property
    def sampled(self) -> bool:
        return self.rate < 1.0

    def as_params(self) -> dict[str, str]:
        """The rule as flat text (an MLflow run's params)."""
        return {
            "customers": str(self.population),
            "sample_rate": f"{self.rate:.6g}",
            "sample_seed": str(self.random_state),
        }


def customer_sample(
    population: int, max_customers: int | None, random_state: int
) -> CustomerSample:
    """The sample rule for ``population`` customers: all of them when ``max_customers`` is None
    or not exceeded, else a rate that keeps about ``max_customers``."""
    if max_customers is not None and max_customers < 1:
        raise ValueError(f"max_customers must be positive, not {max_customers}")
    rate = (
        1.0 if max_customers is None or population <= max_customers else max_customers / population
    )
    return CustomerSample(population, rate, random_state)


def in_sample(customer_ids: pd.Series | np.ndarray, sample: CustomerSample) -> np.ndarray:
    """Which of ``customer_ids`` (text, as validation makes them) are in the sample."""
    ids = np.asarray(customer_ids, dtype=object)
    if not sample.sampled:
        return np.ones(ids.size, dtype=bool)
    hashed = pd.util.hash_array(ids, hash_key=_hash_key(sample.random_state), categorize=False)
    return hashed.astype(np.float64) / _TWO_TO_64 < sample.rate


def _hash_key(random_state: int) -> str:
    """pandas' hash key: exactly 16 characters, from the seed."""
    return f"retain{int(random_state) % 10**10:010d}"
