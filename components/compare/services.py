"""The Compare lens's cached service: one run of the three lenses on one image (or a generated one)."""

from __future__ import annotations

import json

import streamlit as st

from components import loaders
from components.image_input import BY_DIGEST, ImageChoice
from glimpse.compare.run import CompareSpec, run_compare
from glimpse.export import RunRecord


@st.cache_data(max_entries=8, show_spinner=False, hash_funcs=BY_DIGEST)
def compare(model_id: str, device: str, image: ImageChoice | None, spec_json: str) -> RunRecord:
    """One Compare run, keyed by (model, device, the image's digest, canonical spec JSON); ``image`` is None when
    the spec generates one from a prompt."""
    spec = CompareSpec.from_params(json.loads(spec_json))
    classifier = loaders.classifier(model_id, device)
    pipeline = None
    if spec.prompt is not None:
        pipeline = loaders.pipeline(spec.t2i_model, device)
    pixels, name = (None, "generated") if image is None else (image.pixels, image.name)
    with st.spinner("Running the three lenses…"):
        return run_compare(classifier, pixels, spec, image_name=name, pipeline=pipeline)
