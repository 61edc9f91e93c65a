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
