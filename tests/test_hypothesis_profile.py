"""The Hypothesis profile CI runs with (tests/conftest.py): derandomized, so a run in CI tries the same
examples every time and a failure there replays anywhere."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st


def test_the_ci_profile_is_derandomized_and_writes_nothing() -> None:
    ci = settings.get_profile("ci")
    assert ci.derandomize and ci.database is None and ci.deadline is None


def test_ci_loads_it() -> None:
    if os.environ.get("CI") and not os.environ.get("HYPOTHESIS_PROFILE"):
        assert settings().derandomize
    else:
        assert os.environ.get("HYPOTHESIS_PROFILE") or not settings().derandomize


def test_the_ci_profile_draws_the_same_examples_every_run() -> None:
    def draw() -> list[bytes]:
        seen: list[bytes] = []

        @settings(settings.get_profile("ci"), max_examples=30)
        @given(st.binary(min_size=1))
        def collect(data: bytes) -> None:
            seen.append(data)

        collect()
        return seen

    first = draw()
    assert len(first) == 30 and draw() == first
