"""The Cross-attention page's ConceptAttention option: offered for an SD3 pipeline (tiny configs, no download) with
the concept maps beside the cross-attention maps, and absent, with the reason, for the embedded UNet model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components import attention
from components.attention import MODEL_KEY, services
from models.diffusion import bundle_from_pipeline
from tests.apptest_support import generate, open_page, stored
from tests.tiny_models import tiny_sd3_pipeline


@pytest.fixture
def tiny_sd3(monkeypatch):
    """The page's pipeline loader answers "tiny-sd3" with an SD3 pipeline from tiny configs."""
    bundle = bundle_from_pipeline(tiny_sd3_pipeline(), "tiny-sd3", torch.device("cpu"))
    real = services.pipeline
    monkeypatch.setattr(services, "pipeline", lambda m, d: bundle if m == "tiny-sd3" else real(m, d))
    services.generation.clear()
    yield bundle
    services.generation.clear()


def test_sd3_offers_concept_attention_and_shows_the_concept_maps(tiny_sd3):
    at = open_page("app_pages/attention.py")
    at.session_state[MODEL_KEY] = "tiny-sd3"
    at.run()
    assert not at.exception, at.exception
    at.checkbox(key="attention_concepts_on").check()
    at.text_input(key="attention_concepts").set_value("red, dog")
    generate(at, "a red dog", steps=2)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    request, result = stored(at, attention.RESULT_KEY)
    assert request.concept_attention and request.concepts == ("red", "dog")
    assert result.concepts.words == ("red", "dog") and result.trace.words == ("a", "red", "dog")
    keys = {c.proto.id for c in at.get("plotly_chart")}
    assert any("concept_strip" in k for k in keys) and any("concept_cross_overlay" in k for k in keys)
    assert any(s.label == "Concept to compare" for s in at.selectbox)
    assert "Concept maps (NPZ)" in [b.label for b in at.get("download_button")]
    maps = services.concept_maps(result, _whole(result))
    np.testing.assert_allclose(maps.sum(0), 2.0, atol=0.05)  # softmax over concepts, summed over 2 steps


def test_a_probed_pixel_reads_every_concepts_map_there(tiny_sd3):
    """The probe on Cross-attention with ConceptAttention on: beside the words, each concept's map value at the
    pixel (its share among the concepts), equal to the concept maps the page drew."""
    from components.attention import views
    from glimpse.probe import cell

    at = open_page("app_pages/attention.py")
    at.session_state[MODEL_KEY] = "tiny-sd3"
    at.run()
    at.checkbox(key="attention_concepts_on").check()
    at.text_input(key="attention_concepts").set_value("red, dog")
    generate(at, "a red dog", steps=2)
    _, result = stored(at, attention.RESULT_KEY)
    h, w = result.image.shape[:2]
    at.number_input(key=views.PROBE.x).set_value(w - 1)
    at.number_input(key=views.PROBE.y).set_value(1).run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "map" in d.value.columns)
    rows = table[table["map"].str.startswith("concept: ")]
    assert list(rows["map"]) == ["concept: red", "concept: dog"]
    maps = services.concept_maps(result, _whole(result))
    r, c = cell(maps.shape[-2:], (h, w), w - 1, 1)
    np.testing.assert_allclose(rows["value"], maps[:, r, c], rtol=1e-6)
    assert np.isclose(rows["value"].sum(), 2.0, atol=0.05)  # the concepts share the pixel, at each of 2 steps


def _whole(result):
    from components.attention.controls import Slice

    return Slice(0, len(result.trace.timesteps) - 1, tuple(result.trace.resolutions()), None, None, 16)


def test_the_unet_model_has_no_concept_option_and_says_why():
    at = open_page("app_pages/attention.py")
    assert not any(c.key == "attention_concepts_on" for c in at.checkbox)
    reason = [c.value for c in at.caption if "ConceptAttention is not offered" in c.value]
    assert reason and "UNet" in reason[0] and "SD3 or Flux" in reason[0]
