import pytest

from harness.campaign import Settings, run_campaign


@pytest.fixture(scope="session")
def default_run():
    """The default campaign (every family, every built-in candidate, float16, bfloat16, float32 and float64), once
    per session.

    Speed timing is shrunk to 10^4 elements here: the quality tests assert accuracy findings only."""
    result, _corpus = run_campaign(Settings(speed_elements=10_000))
    return result
