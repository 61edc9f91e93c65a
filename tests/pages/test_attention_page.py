"""The cross-attention page on the embedded shapes model: generate, re-slice without regenerating, errors."""

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from components import attention
from components.attention import services, views
from models.diffusion import EMBEDDED_T2I
from tests.apptest_support import generate, open_page, stored


@pytest.fixture
def calls(monkeypatch):
    """Count real generations (the wrapped function is the real one, on the real embedded model)."""
    made = _counted(monkeypatch, "generate_with_attention", "steps")
    services.generation.clear()
    return made


def _counted(monkeypatch, name: str, argument: str) -> list:
    """Wrap the services' ``name`` to record each call's keyword ``argument``; the list of what it recorded."""
    made = []
    real = getattr(services, name)

    def counting(*args, **kwargs):
        made.append(kwargs.get(argument))
        return real(*args, **kwargs)

    monkeypatch.setattr(services, name, counting)
    return made


def _page() -> AppTest:
    return open_page("app_pages/attention.py")


def test_generate_then_reslice_without_regenerating(calls):
    at = _page()
    assert at.info and "Generate" in at.info[0].value
    generate(at, "a red circle to the left of a blue square")
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert calls == [4]
    request, result = stored(at, attention.RESULT_KEY)
    assert request.prompt == "a red circle to the left of a blue square"
    assert result.trace.words == tuple(request.prompt.split())
    assert len(result.trace.timesteps) == 4
    charts = at.get("plotly_chart")
    assert len(charts) >= 5  # strip, overlay, scrubber, mass, IoU matrix
    assert len(at.get("download_button")) == 3
    assert any("Δ" in m.label for m in at.metric)

    # display controls re-slice the stored trace: no new generation
    scrub = next(s for s in at.slider if s.label == "Scrub timesteps")
    scrub.set_value(2).run()
    next(s for s in at.slider if s.label == "Threshold").set_value(0.6).run()
    word = next(s for s in at.selectbox if s.label == "Word to overlay")
    word.set_value(3).run()
    span = next(s for s in at.select_slider if s.label == "Timestep range")
    span.set_value((1, 2)).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert calls == [4]
    assert stored(at, attention.RESULT_KEY)[1] is result

    # the same request again is a cache hit: the recorded progress bar replays, nothing regenerates
    next(b for b in at.button if b.label == "Generate").click().run()
    assert not at.exception, at.exception
    assert calls == [4]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [("   ", "empty"), ("a purple circle", "vocabulary"), (" ".join(["a red circle"] * 6), "at most")],
)
def test_bad_prompts_show_an_error_and_the_page_keeps_running(calls, prompt, expected):
    at = _page()
    generate(at, prompt)
    assert not at.exception, at.exception
    assert at.error and expected in at.error[0].value
    assert "circle" in at.error[0].value  # says what to use: the vocabulary / an example
    assert stored(at, attention.RESULT_KEY) is None
    assert not any("Generate" in i.value for i in at.info)  # the error says what to type, once
    assert any(b.label == "Generate" for b in at.button)


@pytest.mark.parametrize("prompt", ["   ", "?!.,", "a purple circle"])
def test_a_refused_prompt_keeps_the_previous_maps_under_the_error(calls, prompt):
    """Issue 25: a rejected prompt removed the maps and showed 'Type a prompt and press Generate'. The maps
    stay, and the error names the prompt they belong to so they do not read as the refused prompt's answer."""
    at = _page()
    generate(at, "a green circle", steps=2)
    first = stored(at, attention.RESULT_KEY)
    charts = len(at.get("plotly_chart"))
    generate(at, prompt, steps=2)
    assert not at.exception, at.exception
    assert at.error and "Cannot generate" in at.error[0].value
    assert "“a green circle”" in at.error[0].value  # names whose maps stay on screen
    assert stored(at, attention.RESULT_KEY) == first
    assert len(at.get("plotly_chart")) == charts
    assert not any("Generate" in i.value for i in at.info)
    main = list(at.main)  # the error stands above the kept maps
    assert main.index(at.error[0]) < min(main.index(c) for c in at.get("plotly_chart"))


def test_hub_model_that_cannot_load_shows_an_error_and_keeps_the_embedded_model(calls):
    at = _page()
    at.text_input(key="attention_hub_id").set_value("no-such-org/no-such-model")
    next(b for b in at.button if b.label == "Load").click()
    at.run()
    assert not at.exception, at.exception
    assert at.error and "no-such-org/no-such-model" in at.error[0].value
    assert at.session_state[attention.MODEL_KEY] == EMBEDDED_T2I
    assert any(b.label == "Generate" for b in at.button)
    assert calls == []


def test_heads_kept_on_request_and_sliced_by_head_with_a_single_step(calls):
    at = _page()
    at.checkbox(key="attention_heads").check()
    generate(at, "a green triangle above a red square", steps=1)
    assert not at.exception, at.exception
    request, result = stored(at, attention.RESULT_KEY)
    assert request.heads and result.trace.heads
    head = next(s for s in at.selectbox if s.label == "Head")
    head.set_value(1).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert not any(s.label == "Timestep range" for s in at.select_slider)  # one step: nothing to range over
    assert calls == [1]


def test_a_one_word_prompt_draws_its_map(calls):
    at = _page()
    generate(at, "red", steps=2)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert stored(at, attention.RESULT_KEY)[1].trace.words == ("red",)
    assert next(s for s in at.selectbox if s.label == "Word to overlay").value == 0
    assert any("at least 3 words" in i.value for i in at.info)  # content vs style says why it is absent


def test_a_full_stop_and_capitals_are_accepted(calls):
    at = _page()
    generate(at, "A red circle.", steps=2)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert stored(at, attention.RESULT_KEY)[1].trace.words == ("a", "red", "circle")


def test_the_layer_set_is_an_option_and_part_of_the_request(calls):
    at = _page()
    assert at.selectbox(key="attention_layers").value == "daam"
    generate(at, "a red circle", steps=2)
    daam = stored(at, attention.RESULT_KEY)[1].trace
    at.selectbox(key="attention_layers").set_value("all")
    generate(at, "a red circle", steps=2)
    assert not at.exception, at.exception
    request, result = stored(at, attention.RESULT_KEY)
    assert request.layers == "all" and calls == [2, 2]
    assert not any("mid_block" in name for name in daam.layers)
    assert any("mid_block" in name for name in result.trace.layers)


def test_display_changes_reslice_cached_maps(calls, monkeypatch):
    """Word maps per step were recomputed on every rerun; they are cached on the generation and the slice."""
    made = _counted(monkeypatch, "word_maps", "timesteps")
    for cached in (services.sliced_maps, services.step_maps):
        cached.clear()
    at = _page()
    generate(at, "a red circle above a blue square", steps=3)
    assert not at.exception, at.exception
    first = len(made)
    assert first == 1 + 3  # the strip's slice, then each of the 3 steps once
    next(s for s in at.slider if s.label == "Scrub timesteps").set_value(2).run()
    next(s for s in at.selectbox if s.label == "Word to overlay").set_value(2).run()
    at.toggle(key="attention_norm").set_value(False).run()
    assert not at.exception, at.exception
    assert len(made) == first  # nothing recomputed: the word is an index into the cached per-step maps


def test_attention_overlays_fade_at_zero_and_name_their_scales():
    """Issue 25: the overlays tinted the whole image purple at the low end, and the summed and per-step panels
    both said 'attention' on scales 0–7 and 0–0.2."""
    image = np.full((32, 32, 3), 200, np.uint8)
    values = np.zeros((32, 32), np.float32)
    values[8:16, 8:16] = 7.0
    fig = views.overlay_figure(values, image, title="t", label=views.summed_label(0, 24), height=300)
    picture, heat = fig.data
    assert picture.type == "image" and heat.type == "heatmap"
    assert heat.opacity == 1.0 and (heat.zmin, heat.zmax) == (0.0, 7.0)
    low, high = heat.colorscale[0][1], heat.colorscale[-1][1]
    assert low.endswith(", 0)") and not high.endswith(", 0)")  # zero attention leaves the image as it is
    assert heat.colorbar.title.text == "attention, summed over 25 steps (1–25)"
    assert views.summed_label(3, 3) == "attention at step 4"


def test_the_page_labels_summed_and_single_step_colour_bars_apart(calls):
    at = _page()
    generate(at, "a blue square", steps=3)
    assert not at.exception, at.exception
    specs = {c.proto.id.rsplit("-", 1)[-1]: json.loads(c.proto.spec) for c in at.get("plotly_chart")}
    titles = {
        key: [t["colorbar"]["title"]["text"] for t in spec["data"] if t.get("type") == "heatmap" and "colorbar" in t]
        for key, spec in specs.items()
    }
    overlay = next(v for k, v in titles.items() if k.endswith("attention_overlay"))
    scrub = next(v for k, v in titles.items() if k.endswith("attention_scrub_fig"))
    assert overlay == ["attention, summed over 3 steps (1–3)"]
    assert scrub == ["attention at step 3"]


def test_a_probed_pixel_names_the_words_there_overall_and_per_step(calls, monkeypatch):
    """Issue 28, on Cross-attention: a pixel of the generated image (typed; a click on an overlay fills the same
    inputs) lists the words by their attention there over the slice, each with its share, equal to the sliced
    maps' values at the cell holding it; per timestep on request (each step's maps there); both overlays mark it."""
    from components.attention import controls
    from glimpse.probe import cell, word_steps

    slices = []
    real = services.sliced_maps
    monkeypatch.setattr(services, "sliced_maps", lambda result, sl: slices.append(sl) or real(result, sl))
    at = generate(_page(), "a red circle to the left of a blue square")
    _, result = stored(at, attention.RESULT_KEY)
    h, w = result.image.shape[:2]
    at.number_input(key=views.PROBE.x).set_value(3)
    at.number_input(key=views.PROBE.y).set_value(h // 2).run()
    assert not at.exception, at.exception
    words = next(d.value for d in at.dataframe if "share" in d.value.columns)
    maps = real(result, slices[-1])
    r, c = cell(maps.shape[-2:], (h, w), 3, h // 2)
    labels = controls.word_labels(tuple(result.trace.words))  # a repeated word is told apart: "a (1)", "a (2)"
    want = sorted(((label, float(m[r, c])) for label, m in zip(labels, maps)), key=lambda wv: -wv[1])
    assert list(words["word"]) == [word for word, _ in want]
    np.testing.assert_allclose(words["attention"], [v for _, v in want], rtol=1e-6)
    assert abs(words["share"].sum() - 1) < 1e-9
    for key in ("attention_overlay", "attention_scrub_fig"):
        chart = next(ch for ch in at.get("plotly_chart") if ch.key == key)
        assert any(t.get("marker", {}).get("symbol") == "circle-open" for t in json.loads(chart.proto.spec)["data"])
    at.toggle(key="attention_probe_steps").set_value(True).run()
    per_step = next(d.value for d in at.dataframe if "top" in d.value.columns)
    assert list(per_step["t"]) == [int(t) for t in result.trace.timesteps]
    steps = services.step_maps(result, slices[-1])
    expected = word_steps((h, w), steps, labels, 3, h // 2, timesteps=result.trace.timesteps)
    assert list(per_step["top"]) == [row["top"] for row in expected]
    assert calls == [4]  # probing regenerates nothing
