"""What a session keeps of the Cross-attention lens: Generate run as a job (place in the line, Cancel,
out-of-memory message), its (request, result) stored, and what to do about a refused prompt."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from components import jobs, session_results
from components.attention import EXAMPLES, RESULT_KEY, services
from glimpse.attention import GenerationResult
from models.registry import ModelLoadError

if TYPE_CHECKING:
    from components.attention.controls import GenerationRequest


def run(request: GenerationRequest) -> GenerationResult | None:
    """Run (or fetch) the generation and store it; on a user error show st.error and return None."""
    result = None
    try:
        with jobs.heavy("generation", cancel_message="Generation cancelled; the previous image is kept."):
            result = services.generation(**request.arguments())
    except ModelLoadError as err:
        forget()  # maps of another prompt under the error would read as its answer
        st.error(f"Could not load the model: {err}")
        return None
    except ValueError as err:
        # A refused prompt keeps the previous result on screen, named, under the error: a typo must not
        # throw away a generation the user was reading.
        kept = stored()
        below = f"  \nThe maps below are still those of “{kept[0].prompt}”." if kept else ""
        advice = prompt_advice(request.model_id, request.device, str(err))
        st.error(f"**Cannot generate:** {err}.  \n{advice}{below}")
        return None
    if result is None:  # out of memory or unloaded: jobs.heavy said so
        return None
    session_results.put(RESULT_KEY, (request, result))
    return result


def stored() -> tuple[GenerationRequest, GenerationResult] | None:
    """The last generated (request, result) of this session, or None."""
    return session_results.get(RESULT_KEY)


def forget() -> None:
    """Drop the session's generation (another model was loaded, or it could not be)."""
    session_results.pop(RESULT_KEY)


def prompt_advice(model_id: str, device: str, message: str = "") -> str:
    """What to do about a refused prompt: for the embedded model, its vocabulary (unless already named)."""
    try:
        bundle = services.pipeline(model_id, device)
    except ModelLoadError:
        return "Check the prompt and try again."
    example = f"Example: “{EXAMPLES[0]}”."
    if bundle.vocabulary:
        if "vocabulary" in message:
            return f"Rephrase with those words only. {example}"
        return f"{vocabulary_text(bundle)} {example}"
    return f"Type a non-empty prompt of at most {bundle.max_tokens} text-encoder tokens."


def vocabulary_text(bundle) -> str:
    """The embedded model's words and prompt length, as the form's help and the refusal's advice say them."""
    return (
        f"The embedded model knows only these words: {', '.join(bundle.vocabulary)} "
        f"(at most {bundle.max_tokens - 2} words)."
    )
