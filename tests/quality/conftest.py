import os

import pytest

from harness._executors import executor_for
from harness.campaign import Settings, run_campaign


@pytest.fixture(scope="session")
def default_run():
    """The default campaign (every family, every built-in candidate, float16, bfloat16, float32 and float64), once
    per session, on every core as ``lossfuzz run`` runs it (its cells in local processes).

    Speed timing is shrunk to 10^4 elements here: the quality tests assert accuracy findings only."""
    with executor_for(None, os.cpu_count() or 1) as pool:
        result, _corpus = run_campaign(Settings(speed_elements=10_000), executor=pool)
    return result
