"""What a session keeps of the Diffusion classifier: Classify run as a job (place in the line, Cancel,
out-of-memory message) and its (request, result)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from components import jobs, session_results
from components.diffusion_classifier import RESULT_KEY, services
from glimpse.diffusion_classifier import DiffusionClassification
from models.registry import ModelLoadError

if TYPE_CHECKING:
    from components.diffusion_classifier.controls import ClassifyRequest


def run(request: ClassifyRequest) -> None:
    """Classify (or fetch the cached scores) and store them; a refused prompt or model becomes an st.error."""
    result = None
    try:
        with jobs.heavy("diffusion classification", cancel_message="Classification cancelled."):
            result = services.scores(**request.arguments())
    except (ValueError, ModelLoadError) as err:
        session_results.pop(RESULT_KEY)
        st.error(f"**Cannot classify:** {err}")
        return
    if result is not None:
        session_results.put(RESULT_KEY, (request, result))


def stored() -> tuple[ClassifyRequest, DiffusionClassification] | None:
    return session_results.get(RESULT_KEY)
