import os
import tempfile

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# batch sizes measured during the tests are remembered in a throw-away folder, not the user's cache
os.environ.setdefault("GLIMPSE_CACHE_DIR", tempfile.mkdtemp(prefix="glimpse-test-cache-"))
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# Reference scripts run in their own environments (DAAM pins old diffusers); they are not test modules.
collect_ignore = ["reference"]
