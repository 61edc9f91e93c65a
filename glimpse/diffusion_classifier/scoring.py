"""A text-to-image diffusion model as a zero-shot classifier (Li et al., "Your Diffusion Model is Secretly a
Zero-Shot Classifier", ICCV 2023).

For an image ``x₀`` (the model's encoding of it) and candidate prompts ``c``: at evenly spaced timesteps ``t``,
noise the image with one noise draw ``ε_t`` (the SAME for every prompt at that timestep), let the denoiser
predict, and measure the error against the target of its own parameterisation (ε, v, or the flow-matching
velocity). The prompt with the lowest (weighted) mean error wins; probabilities are a softmax of minus the
summed error, the diffusion ELBO's estimate of ``log p(x | c)`` up to a constant.

Adaptive pruning (the reference code's ``eval_prob_adaptive``): the timesteps come in stages; after each
stage only the ``keep`` prompts with the lowest mean error so far go on. The grid for ``n`` samples is
``t_i = T//n//2 + i·(T//n)``, and stage ``s`` evaluates an evenly strided subset of ``samples[s]`` of them
(timesteps evaluated in an earlier stage are not recomputed). Every surviving prompt of a timestep goes
through the denoiser in one batch (chunks of ``batch_size``), without gradients.

What a model must provide is a :class:`Denoising` adapter (:mod:`glimpse.diffusion_classifier.adapters`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from glimpse.versions import library_versions

LOSSES = ("l2", "l1", "huber")
WEIGHTINGS = ("uniform", "logit-normal")


class Denoising(Protocol):
    """What the classifier needs from a model (see :mod:`glimpse.diffusion_classifier.adapters`)."""

    model_id: str
    num_train_timesteps: int
    parameterisation: str  # "epsilon" | "v_prediction" | "sample" | "flow"

    def check_prompt(self, prompt: str) -> str: ...

    def encode_image(self, image: np.ndarray) -> torch.Tensor: ...

    def encode_prompts(self, prompts: Sequence[str]) -> Any: ...

    def select(self, conditions: Any, index: Sequence[int]) -> Any: ...

    def noised(self, x0: torch.Tensor, noise: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]: ...

    def predict(self, x_t: torch.Tensor, t: int, conditions: Any) -> torch.Tensor: ...


def timestep_grid(samples: int, total: int = 1000) -> list[int]:
    """The reference grid of ``samples`` timesteps out of ``total``: ``T//n//2 + i·(T//n)``.

    >>> timestep_grid(4), timestep_grid(1)
    ([125, 375, 625, 875], [500])
    """
    if not 1 <= samples <= total:
        raise ValueError(f"samples: between 1 and {total} timesteps, got {samples}")
    step = total // samples
    return list(range(step // 2, total, step))[:samples]


def stage_timesteps(grid: Sequence[int], samples: int) -> list[int]:
    """The evenly strided subset of ``grid`` a stage of ``samples`` timesteps evaluates (the reference's rule).

    >>> stage_timesteps(timestep_grid(8), 2), stage_timesteps(timestep_grid(8), 8)[:3]
    ([312, 812], [62, 187, 312])
    """
    if samples < 1:
        raise ValueError(f"samples: at least 1 timestep per stage, got {samples}")
    stride = max(1, len(grid) // samples)
    return list(grid[stride // 2 :: stride][:samples])


def timestep_weights(weighting: str | Sequence[float], grid: Sequence[int], total: int) -> np.ndarray:
    """Weights of the grid's timesteps: ``uniform``, ``logit-normal`` (the density of a logit-normal(0, 1) at
    ``(t + ½) / T``, SD3's training distribution), or one non-negative weight per grid timestep.

    >>> timestep_weights("uniform", [250, 750], 1000).tolist()
    [1.0, 1.0]
    >>> w = timestep_weights("logit-normal", [99, 500, 900], 1000); bool(w[1] > w[0] and np.isclose(w[0], w[2]))
    True
    """
    if isinstance(weighting, str):
        if weighting == "uniform":
            return np.ones(len(grid))
        if weighting == "logit-normal":
            u = (np.asarray(grid, np.float64) + 0.5) / total
            return np.exp(-0.5 * np.log(u / (1 - u)) ** 2) / (u * (1 - u) * math.sqrt(2 * math.pi))
        raise ValueError(f"weighting: 'uniform', 'logit-normal' or one weight per timestep, got {weighting!r}")
    w = np.asarray(weighting, np.float64)
    if w.shape != (len(grid),) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weighting: {len(grid)} non-negative weights (one per timestep), not all zero; got {w.shape}")
    return w


def _errors(pred: torch.Tensor, target: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-element error (B, C, H, W) in float32."""
    pred, target = pred.float(), target.float()
    if loss == "l2":
        return (pred - target) ** 2
    if loss == "l1":
        return (pred - target).abs()
    return F.huber_loss(pred, target, reduction="none")


@dataclass(frozen=True)
class DiffusionClassification:
    """The scores of every candidate prompt for one image.

    ``errors[p, i]``: prompt p's error (mean over elements) at ``timesteps[i]``, NaN where it was not evaluated
    (pruned earlier). ``stage_maps[s, p]``: prompt p's per-pixel error (mean over channels) summed over the
    timesteps of stage s, weighted (zero where not evaluated).
    """

    model_id: str
    prompts: tuple[str, ...]
    timesteps: tuple[int, ...]
    weights: np.ndarray
    errors: np.ndarray
    stage_maps: np.ndarray
    stages: tuple[tuple[int, ...], ...]  # the timesteps of each stage
    survivors: tuple[tuple[int, ...], ...]  # the prompts evaluated in each stage
    elements: int  # elements per sample (channels × height × width of x₀)
    denoiser_calls: int
    denoiser_evaluations: int
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def reached(self) -> np.ndarray:
        """(P,) the last stage each prompt was evaluated in."""
        out = np.zeros(len(self.prompts), int)
        for s, alive in enumerate(self.survivors):
            out[list(alive)] = s
        return out

    @property
    def mean_error(self) -> np.ndarray:
        """(P,) each prompt's weighted mean error over the timesteps it was evaluated at; +inf for a prompt with a
        non-finite error (a numerical failure loses instead of being left out)."""
        done = ~np.isnan(self.errors)
        w = np.where(done, self.weights[None, :], 0.0)
        bad = (np.isinf(self.errors) & (w > 0)).any(1)
        finite = np.where(done & np.isfinite(self.errors), self.errors, 0.0)
        mean = (finite * w).sum(1) / np.maximum(w.sum(1), 1e-300)
        return np.where(bad, np.inf, mean)

    def ranking(self) -> list[int]:
        """Prompt indices, best first: those that reached a later stage first, then by mean error."""
        reached, err = self.reached, self.mean_error
        return sorted(range(len(self.prompts)), key=lambda p: (-reached[p], err[p]))

    @property
    def prediction(self) -> int:
        return self.ranking()[0]

    @property
    def probabilities(self) -> np.ndarray:
        """(P,) softmax of −(mean error × elements) over the prompts of the last stage; 0 for pruned ones."""
        last = list(self.survivors[-1])
        logits = -self.mean_error[last] * self.elements
        if not np.isfinite(logits).any():  # every survivor failed numerically: nothing to prefer
            logits = np.zeros(len(last))
        p = np.exp(logits - logits.max())
        out = np.zeros(len(self.prompts))
        out[last] = p / p.sum()
        return out

    def difference_map(self, first: int | None = None, second: int | None = None) -> np.ndarray:
        """(h, w): where ``first`` (default: the prediction) explains the image better than ``second`` (default:
        the runner-up): the per-pixel error of ``second`` minus that of ``first``, over the stages both were
        evaluated in, weighted like the mean error. Positive where the first prompt fits better."""
        ranking = self.ranking()
        first = ranking[0] if first is None else first
        second = ranking[1] if second is None else second
        shared = [s for s, alive in enumerate(self.survivors) if first in alive and second in alive]
        total = sum(float(self.weights[[self.timesteps.index(t) for t in self.stages[s]]].sum()) for s in shared)
        diff = sum(self.stage_maps[s, second] - self.stage_maps[s, first] for s in shared)
        return np.asarray(diff, np.float32) / max(total, 1e-12)

    def rows(self) -> list[dict[str, Any]]:
        """One row per prompt, in the order given: its text, mean error, probability, timesteps evaluated."""
        err, prob, reached = self.mean_error, self.probabilities, self.reached
        counts = (~np.isnan(self.errors)).sum(1)
        return [
            {
                "prompt": text,
                "mean_error": float(err[p]),
                "probability": float(prob[p]),
                "timesteps": int(counts[p]),
                "stage_reached": int(reached[p]) + 1,
            }
            for p, text in enumerate(self.prompts)
        ]

    def summary(self) -> dict[str, Any]:
        """The CLI's JSON: the winning prompt's text, every prompt's scores and the denoiser's work."""
        return {
            "prediction": self.prompts[self.prediction],
            "prompts": self.rows(),
            "denoiser_calls": self.denoiser_calls,
            "denoiser_evaluations": self.denoiser_evaluations,
            "seconds": round(self.seconds, 3),
        }

    def meta(self, *, versions: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "lens": "diffusion-classifier",
            "model_id": self.model_id,
            "prompts": list(self.prompts),
            "timesteps": list(self.timesteps),
            "stages": [list(s) for s in self.stages],
            "settings": self.settings,
        }
        if versions:
            out["versions"] = library_versions()
        return out


def classify(
    model: Denoising,
    image: np.ndarray,
    prompts: Sequence[str],
    *,
    samples: int | Sequence[int] = 20,
    keep: Sequence[int] | None = None,
    loss: str = "l2",
    weighting: str | Sequence[float] = "uniform",
    seed: int = 0,
    batch_size: int = 32,
    progress: Callable[[float, str], None] | None = None,
) -> DiffusionClassification:
    """Score ``image`` (uint8 RGB, H×W×3) against ``prompts`` with ``model``'s denoising error.

    Parameters
    ----------
    samples : timesteps per stage, cumulative: ``20`` (one stage) or e.g. ``(10, 40)``: 10 timesteps for every
        prompt, then 40 in all (30 more) for the survivors.
    keep : prompts kept after each stage (default: all after each but the last); the last entry is ignored
        (every prompt of the last stage is scored).
    loss : ``l2``, ``l1`` or ``huber``, against the target of the model's own parameterisation.
    weighting : ``uniform``, ``logit-normal`` or one weight per timestep of the largest stage's grid.
    seed : the noise draws (one per timestep, shared by every prompt).
    """
    start = time.perf_counter()
    report = progress or (lambda f, m: None)
    texts = tuple(model.check_prompt(p) for p in prompts)
    if len(texts) < 2:
        raise ValueError(f"prompts: at least two candidates to choose between, got {len(texts)}")
    if len(set(texts)) < len(texts):
        raise ValueError(f"prompts: each candidate once; repeated: {sorted({p for p in texts if texts.count(p) > 1})}")
    stages_n = (samples,) if isinstance(samples, int) else tuple(int(n) for n in samples)
    if not stages_n or any(n < 1 for n in stages_n) or any(b <= a for a, b in zip(stages_n, stages_n[1:])):
        raise ValueError(f"samples: increasing timestep counts per stage, got {samples}")
    keep_n = tuple(int(k) for k in keep) if keep is not None else (len(texts),) * len(stages_n)
    if len(keep_n) != len(stages_n) or any(k < 1 for k in keep_n):
        raise ValueError(f"keep: one count of at least 1 per stage ({len(stages_n)}), got {keep}")
    if loss not in LOSSES:
        raise ValueError(f"loss: one of {', '.join(LOSSES)}, got {loss!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size: at least 1, got {batch_size}")
    total = int(model.num_train_timesteps)
    grid = timestep_grid(stages_n[-1], total)
    weights = timestep_weights(weighting, grid, total)

    with torch.no_grad():
        x0 = model.encode_image(image)
        conditions = model.encode_prompts(texts)
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn((len(grid), *x0.shape[1:]), generator=generator).to(x0.device, x0.dtype)
        errors = np.full((len(texts), len(grid)), np.nan)
        maps = np.zeros((len(stages_n), len(texts), *x0.shape[2:]), np.float32)
        alive = list(range(len(texts)))
        done: set[int] = set()
        stages, survivors = [], []
        calls = evaluations = 0
        work = sum(len(stage_timesteps(grid, n)) for n in stages_n) * len(texts)  # an upper bound, for progress
        for s, n in enumerate(stages_n):
            todo = [t for t in stage_timesteps(grid, n) if t not in done]
            stages.append(tuple(todo))
            survivors.append(tuple(alive))
            for t in todo:
                i = grid.index(t)
                x_t, target = model.noised(x0, noise[i : i + 1], t)
                for lo in range(0, len(alive), batch_size):
                    chunk = alive[lo : lo + batch_size]
                    pred = model.predict(x_t.expand(len(chunk), *x_t.shape[1:]), t, model.select(conditions, chunk))
                    err = _errors(pred, target.expand_as(pred), loss)
                    values = err.flatten(1).mean(1).to("cpu", torch.float64).numpy()
                    errors[chunk, i] = np.where(np.isfinite(values), values, np.inf)  # NaN means "not scored"
                    maps[s, chunk] += float(weights[i]) * err.mean(1).cpu().numpy()
                    calls += 1
                    evaluations += len(chunk)
                done.add(t)
                report(min(1.0, evaluations / work), f"stage {s + 1}: t = {t}, {len(alive)} prompts")
            if s < len(stages_n) - 1:
                partial = DiffusionClassification(
                    "", texts, tuple(grid), weights, errors, maps, (), (tuple(alive),), 1, 0, 0, 0.0
                )
                err = partial.mean_error
                alive = sorted(sorted(alive, key=lambda p: err[p])[: keep_n[s]])
    report(1.0, "done")
    settings = {
        "samples": list(stages_n),
        "keep": list(keep_n),
        "loss": loss,
        "weighting": weighting if isinstance(weighting, str) else [float(w) for w in weights],
        "seed": seed,
        "batch_size": batch_size,
        "parameterisation": model.parameterisation,
        "num_train_timesteps": total,
    }
    return DiffusionClassification(
        model.model_id,
        texts,
        tuple(grid),
        weights,
        errors,
        maps,
        tuple(stages),
        tuple(survivors),
        int(np.prod(x0.shape[1:])),
        calls,
        evaluations,
        time.perf_counter() - start,
        settings,
    )
