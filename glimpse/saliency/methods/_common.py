"""Small helpers shared by the method files."""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import torch


@contextmanager
def quiet_captum():
    """Captum warns on every call that it sets hooks (and about inputs not requiring grad); the warning is
    about its own bookkeeping, not the user's input, so it is silenced here and only here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*[Ss]etting (forward, )?backward hooks.*")
        warnings.filterwarnings("ignore", message=r".*[Ii]nput Tensor \d+ did not already require gradients.*")
        warnings.filterwarnings("ignore", message=r".*[Ii]nput Tensor \d+ has a dtype which does not.*")
        yield


def score_of(ctx, x: torch.Tensor) -> torch.Tensor:
    """S(x) per example, (B,), without gradients, batched."""
    with torch.no_grad():
        return torch.cat([ctx.score(x[sl])[:, 0] for sl in ctx.chunks(x.shape[0])])
