"""Hypothesis profiles and guards shared by tests/, doctests in tinygrad_rnn/ and docs/*.md.

Profiles (choose with TINYGRAD_RNN_PROFILE): `ci` (default, keeps the suite to a
few minutes on 2 cores), `dev` (fewer examples), `thorough` (many more).
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=10, deadline=None)
settings.register_profile("thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("TINYGRAD_RNN_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _grad_mode_is_not_leaked():
    """Fail any test that leaves recording switched off (a leaked no_grad)."""
    import tinygrad_rnn as tg

    yield
    assert tg.is_grad_enabled(), "a test left grad mode disabled"


@pytest.fixture(autouse=True)
def _doctest_namespace(request, doctest_namespace):
    """`np` and `tg` for the docstrings of tinygrad_rnn/ (read beside their module's imports).

    The chapters (docs/*.md) and README.md get nothing: each imports what it uses,
    so every example can be pasted into a fresh Python session as it stands.
    """
    if request.node.path.suffix == ".md":
        return
    import tinygrad_rnn as tg

    doctest_namespace["np"] = np
    doctest_namespace["tg"] = tg
