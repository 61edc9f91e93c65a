"""The diffusion classifier lens: a text-to-image model scores an image against candidate prompts by how well
it denoises the image under each (:mod:`.scoring`), for any pipeline with an adapter (:mod:`.adapters`), with
hard negatives generated for a prompt (:mod:`.negatives`)."""

from glimpse.diffusion_classifier.adapters import FlowMatching, NoisePrediction, adapter_for
from glimpse.diffusion_classifier.negatives import hard_negatives
from glimpse.diffusion_classifier.scoring import (
    DiffusionClassification,
    classify,
    stage_timesteps,
    timestep_grid,
    timestep_weights,
)

__all__ = [
    "DiffusionClassification",
    "FlowMatching",
    "NoisePrediction",
    "adapter_for",
    "classify",
    "hard_negatives",
    "stage_timesteps",
    "timestep_grid",
    "timestep_weights",
]
