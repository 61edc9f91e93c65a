import os
import tempfile

import pytest
import torch
from hypothesis import HealthCheck, settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# batch sizes measured during the tests are remembered in a throw-away folder, not the user's cache
os.environ.setdefault("GLIMPSE_CACHE_DIR", tempfile.mkdtemp(prefix="glimpse-test-cache-"))
# the Lessons page's background warm-up stays off in the test process (its test calls it; the browser tests'
# servers run it as a user's would)
os.environ.setdefault("GLIMPSE_WARM_LESSONS", "0")
# Property-based tests (tests/test_untrusted_inputs.py): a fixed, bounded set of examples in the suite; more with
# HYPOTHESIS_PROFILE=thorough.
settings.register_profile(
    "ci",
    max_examples=60,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# Reference scripts run in their own environments (DAAM pins old diffusers); they are not test modules.
collect_ignore = ["reference"]


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray runtime for every test that asks for it; the library's ``--ray local`` finds it running and
    uses it (it starts its own only when none is), and it is shut down once, after the last test."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield "local"
    ray.shutdown()
