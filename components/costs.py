"""What work will cost before it runs, on this machine: the images it pushes through the model (counted as
:func:`glimpse.saliency.estimate_cost` counts them) times the pass time measured here, once per model and
device. Saliency's cost line and every job's estimate (components/jobs.py) come from here."""

from __future__ import annotations

import streamlit as st

from components import loaders
from glimpse.saliency import PanelCost, PassTime, estimate_cost, measure_pass_time

#: Methods as the cached services take them: ``((name, ((param, value), ...)), ...)``.
Methods = tuple[tuple[str, tuple], ...]


def as_methods(methods, params: dict[str, dict] | None = None) -> Methods:
    """Method names (or (name, dict) pairs) as a hashable panel, ``params[name]`` filled in where given."""
    out = []
    for m in methods:
        name, own = (m, (params or {}).get(m, {})) if isinstance(m, str) else (m[0], dict(m[1]))
        out.append((name, tuple(sorted(own.items()))))
    return tuple(out)


@st.cache_data(max_entries=8, show_spinner="Timing this machine's passes (once per model and device)…")
def pass_time(model_id: str, device: str) -> PassTime:
    """Seconds per image of a forward and a forward+backward pass, measured once per model and device."""
    return measure_pass_time(loaders.classifier(model_id, device))


@st.cache_data(max_entries=64, show_spinner=False)
def panel_cost(
    model_id: str, device: str, methods: Methods, layer: str | None, noise_tunnel: tuple | None
) -> PanelCost:
    """The images ``explain`` will push through the model for this panel (counted, not run)."""
    return estimate_cost(
        loaders.classifier(model_id, device),
        [(name, dict(params)) for name, params in methods],
        layer=layer,
        noise_tunnel=dict(noise_tunnel) if noise_tunnel else None,
    )


def explain_seconds(model_id: str, device: str, methods: Methods, *, layer: str | None = None) -> float | None:
    """Expected seconds of one ``explain`` call of ``methods`` on one image (the middle of the fewest and the
    most for adaptive methods); None when a method's cost is not declared."""
    cost = panel_cost(model_id, device, methods, layer, None)
    if cost.unknown:
        return None
    low, high = cost.seconds(pass_time(model_id, device))
    return (low + high) / 2


def forward_seconds(model_id: str, device: str, images: int) -> float:
    """Seconds of ``images`` forward passes without gradients, in the engine's batches."""
    return pass_time(model_id, device).seconds(int(images), 0)


def total(*parts: float | None) -> float | None:
    """The sum, or None when any part is unknown."""
    return None if any(p is None for p in parts) else float(sum(parts))


# ------------------------------------------------------------------------------------------ diffusion models
def _timed(run) -> float:
    import time

    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


@st.cache_data(max_entries=8, show_spinner="Timing this machine's denoiser (once per model and device)…")
def denoising_step(model_id: str, device: str, prompt: str, guidance: float) -> tuple[float, float]:
    """(fixed seconds, seconds per denoising step) of a generation with attention recording on this machine: after
    an untimed warm-up generation, the faster of two 1-step generations of ``prompt`` against a 5-step one (a
    first call's set-up, timed, made a small model's step look free: "0 ms a step")."""
    from components.attention.services import pipeline
    from glimpse.attention import generate_with_attention

    bundle = pipeline(model_id, device)

    def run(steps: int) -> float:
        return _timed(lambda: generate_with_attention(bundle, prompt, seed=0, steps=steps, guidance=guidance))

    run(1)
    one = min(run(1), run(1))
    per = max(0.0, (run(5) - one) / 4)
    return max(0.0, one - per), per


@st.cache_data(max_entries=8, show_spinner="Timing this machine's denoiser (once per model and device)…")
def denoising_sample(model_id: str, device: str, prompts: tuple[str, ...]) -> tuple[float, float]:
    """(fixed seconds, seconds per prompt and timestep) of the diffusion classifier on this machine: ``prompts``
    (two) scored on 1 and on 3 timesteps of a grey image, timed."""
    import numpy as np

    from components.attention.services import pipeline
    from glimpse.diffusion_classifier import adapter_for, classify

    bundle = pipeline(model_id, device)
    model = adapter_for(bundle.pipe, bundle.model_id)
    image = np.full((64, 64, 3), 128, np.uint8)
    with bundle.lock:
        one = _timed(lambda: classify(model, image, prompts, samples=1, seed=0))
        three = _timed(lambda: classify(model, image, prompts, samples=3, seed=0))
    per = max(0.0, (three - one) / (2 * len(prompts)))
    return max(0.0, one - per * len(prompts)), per


def classification_seconds(model_id: str, device: str, prompts: tuple[str, ...], samples: tuple[int, ...],
                           keep: tuple[int, ...] | None) -> float:  # fmt: skip
    """Expected seconds of a classification: every prompt on the first stage's timesteps, then the prompts kept
    after each stage on the next stage's (cumulative counts, as ``classify`` takes them)."""
    fixed, per = denoising_sample(model_id, device, tuple(prompts[:2]))
    alive, done, units = len(prompts), 0, 0
    for i, total in enumerate(samples):
        units += alive * (int(total) - done)
        done = int(total)
        if keep is not None and i < len(keep):
            alive = min(alive, int(keep[i]))
    return fixed + per * units
