"""The diffusion classifier's algorithm on an analytic denoiser where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glimpse.diffusion_classifier import classify, stage_timesteps, timestep_grid, timestep_weights


class Templates:
    """An ε-predicting 'denoiser' that knows one clean image per prompt: ε̂ = (x_t − √ā·template) / √(1 − ā).
    For the image that equals prompt k's template, prompt k's error is exactly 0 at every timestep; any other
    prompt's is ā/(1 − ā)·(x₀ − template)², the same noise draw cancelling out."""

    model_id = "templates"
    num_train_timesteps = 1000
    parameterisation = "epsilon"

    def __init__(self, templates: dict[str, np.ndarray]) -> None:
        self.templates = templates
        self.alphas = torch.linspace(0.999, 0.01, 1000, dtype=torch.float64)
        self.calls: list[int] = []

    def check_prompt(self, prompt: str) -> str:
        if prompt not in self.templates:
            raise ValueError(f"prompt {prompt!r}: unknown")
        return prompt

    def encode_image(self, image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(image.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)[None]

    def encode_prompts(self, prompts):
        return torch.stack([self.encode_image(self.templates[p])[0] for p in prompts])

    @staticmethod
    def select(conditions, index):
        return conditions[list(index)]

    def noised(self, x0, noise, t):
        a = float(self.alphas[t])
        return a**0.5 * x0 + (1 - a) ** 0.5 * noise, noise

    def predict(self, x_t, t, conditions):
        self.calls.append(len(x_t))
        a = float(self.alphas[t])
        return (x_t - a**0.5 * conditions) / (1 - a) ** 0.5


def _images():
    rng = np.random.default_rng(0)
    return {f"prompt {i}": rng.integers(0, 256, (4, 4, 3), dtype=np.uint8) for i in range(5)}


def test_the_template_of_the_image_wins_with_zero_error_and_the_others_follow_analytically():
    images = _images()
    model = Templates(images)
    result = classify(model, images["prompt 3"], list(images), samples=8)
    assert result.prediction == 3 and result.summary()["prediction"] == "prompt 3"
    assert np.allclose(result.errors[3], 0, atol=1e-10) and (result.errors[[0, 1, 2, 4]] > 0).all()
    x0 = model.encode_image(images["prompt 3"]).double()
    for p in (0, 4):
        other = model.encode_image(images[f"prompt {p}"]).double()
        for i, t in enumerate(result.timesteps):
            a = float(model.alphas[t])
            expected = float((a / (1 - a) * (x0 - other) ** 2).mean())
            assert result.errors[p, i] == pytest.approx(expected, rel=1e-4)
    assert result.probabilities[3] == pytest.approx(1.0) and result.probabilities.sum() == pytest.approx(1.0)
    # every prompt of a timestep in one call: 8 calls of 5
    assert model.calls == [5] * 8 and (result.denoiser_calls, result.denoiser_evaluations) == (8, 40)
    assert result.difference_map().min() >= 0  # the winner fits every pixel at least as well


def test_batches_split_at_batch_size_and_give_the_same_scores():
    images = _images()
    whole = classify(Templates(images), images["prompt 1"], list(images), samples=4)
    model = Templates(images)
    split = classify(model, images["prompt 1"], list(images), samples=4, batch_size=2)
    assert model.calls == [2, 2, 1] * 4 and split.denoiser_calls == 12
    np.testing.assert_allclose(split.errors, whole.errors, rtol=1e-6)


def test_pruning_keeps_the_best_and_scores_only_them_later():
    images = _images()
    model = Templates(images)
    result = classify(model, images["prompt 2"], list(images), samples=(2, 8), keep=(2, 1))
    assert result.prediction == 2
    assert result.denoiser_evaluations == 5 * 2 + 2 * 6  # stage 2: the 6 timesteps not yet scored, 2 prompts
    assert result.stages[0] == tuple(stage_timesteps(timestep_grid(8), 2)) and len(result.stages[1]) == 6
    assert len(result.survivors[1]) == 2 and 2 in result.survivors[1]
    counts = np.isfinite(result.errors).sum(1)
    assert sorted(counts.tolist()) == [2, 2, 2, 8, 8]
    pruned = [p for p in range(5) if p not in result.survivors[1]]
    assert (result.probabilities[pruned] == 0).all() and result.ranking()[0] == 2
    assert [r["stage_reached"] for r in result.rows()][2] == 2


def test_the_grid_and_the_stages_follow_the_reference_code():
    total, n_max = 1000, 50
    start = total // n_max // 2
    reference = list(range(start, total, total // n_max))[:n_max]
    assert timestep_grid(n_max) == reference
    for n in (5, 10, 25, 50):
        assert stage_timesteps(reference, n) == reference[len(reference) // n // 2 :: len(reference) // n][:n]


def test_weights_losses_and_bad_settings():
    images = _images()
    grid = timestep_grid(4)
    w = timestep_weights("logit-normal", grid, 1000)
    assert w.shape == (4,) and w[1] > w[0]
    model = Templates(images)
    weighted = classify(model, images["prompt 0"], list(images)[:3], samples=4, weighting=[0, 0, 0, 1], loss="l1")
    err = weighted.errors
    assert weighted.mean_error[1] == pytest.approx(err[1, 3])  # only the last timestep counts
    with pytest.raises(ValueError, match="at least two"):
        classify(model, images["prompt 0"], ["prompt 0"])
    with pytest.raises(ValueError, match="each candidate once"):
        classify(model, images["prompt 0"], ["prompt 0", "prompt 0"])
    with pytest.raises(ValueError, match="unknown"):
        classify(model, images["prompt 0"], ["prompt 0", "nothing"])
    with pytest.raises(ValueError, match="samples"):
        classify(model, images["prompt 0"], ["prompt 0", "prompt 1"], samples=(8, 4))
    with pytest.raises(ValueError, match="keep"):
        classify(model, images["prompt 0"], ["prompt 0", "prompt 1"], samples=(2, 4), keep=(1,))
    with pytest.raises(ValueError, match="loss"):
        classify(model, images["prompt 0"], ["prompt 0", "prompt 1"], loss="l3")
    with pytest.raises(ValueError, match="weighting"):
        classify(model, images["prompt 0"], ["prompt 0", "prompt 1"], samples=4, weighting=[1, 2])


class Broken(Templates):
    """Predicts NaN for the prompt whose template is all zeros (a numerical failure, as fp16 can give)."""

    def predict(self, x_t, t, conditions):
        out = super().predict(x_t, t, conditions)
        bad = (conditions == -1).flatten(1).all(1)
        out[bad] = float("nan")
        return out


def test_a_numerical_failure_loses_instead_of_being_left_out():
    images = _images()
    images["broken"] = np.zeros((4, 4, 3), np.uint8)  # its template encodes to all −1: predicted NaN
    model = Broken(images)
    result = classify(model, images["prompt 2"], ["prompt 0", "broken", "prompt 2"], samples=4)
    assert np.isinf(result.errors[1]).all() and result.mean_error[1] == np.inf
    assert result.prediction == 2 and result.probabilities[1] == 0.0
    assert [r["timesteps"] for r in result.rows()] == [4, 4, 4]
    # even on the image it 'matches', the broken prompt cannot win
    assert classify(model, images["broken"], ["prompt 0", "broken"], samples=4).prediction == 0
    with pytest.raises(ValueError, match="samples"):
        classify(model, images["prompt 0"], ["prompt 0", "prompt 1"], samples=(0, 4))
