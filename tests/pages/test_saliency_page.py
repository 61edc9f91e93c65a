"""The saliency page end to end (AppTest): compute, display changes without recompute, faithfulness,
downloads, and a bad upload."""

import io
import json

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from components.saliency import views as saliency_views
from components.saliency.controls import TOP1, DisplayOptions
from components.saliency.services import CALLS_KEY, RESULT_KEY, saliency_maps
from glimpse.display import colour_range, shown_values
from glimpse.saliency.npz import read_npz
from tests.apptest_support import APP, open_page, stored, stored_under


def saliency_page() -> AppTest:
    return open_page("app_pages/saliency.py")


def compute(at: AppTest, methods) -> AppTest:
    at.multiselect(key="sal_methods").set_value(list(methods))
    at.run()
    next(b for b in at.button if b.label == "Compute").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


@pytest.fixture(scope="module")
def page() -> AppTest:
    # The service's cache is process-wide: another test file that computed the same panel would make this
    # fixture's Compute a cache hit and the counts below off by one (it did, in the whole suite).
    saliency_maps.clear()
    return compute(saliency_page(), ["gradient", "gradcam"])


def test_compute_shows_maps(page):
    record = stored(page, RESULT_KEY)
    assert [m.method for m in record.maps] == ["gradient", "gradcam"]
    assert all(m.values.shape == (224, 224) and np.isfinite(m.values).all() for m in record.maps)
    assert page.session_state[CALLS_KEY] == 1
    charts = page.get("plotly_chart")
    assert len(charts) >= 3  # predictions + one overlay per map
    overlay = json.loads(charts[-1].proto.spec)
    heat = next(t for t in overlay["data"] if t["type"] == "heatmap")
    assert "colorbar" in heat and "value=" in heat["hovertemplate"]
    assert overlay["data"][0]["type"] == "image" and overlay["data"][0]["source"].startswith("data:image/png")


def test_display_changes_never_recompute(page):
    for mode in ("absolute", "positive", "signed"):
        page.radio(key="sal_mode").set_value(mode)
        page.run()
        assert not page.exception
    page.toggle(key="sal_shared").set_value(True)
    page.slider(key="sal_clip").set_value(95.0)
    page.slider(key="sal_opacity").set_value(0.3)
    page.toggle(key="sal_teaching").set_value(True)
    page.run()
    assert not page.exception
    assert page.session_state[CALLS_KEY] == 1
    assert any("Selvaraju" in c.value for c in page.caption)  # Grad-CAM's citation in teaching mode


def press(page: AppTest, key: str) -> list[str]:
    """Click the button ``key``; the titles of the charts drawn after it (no exception, no error)."""
    next(b for b in page.button if b.key == key).click()
    page.run()
    assert not page.exception and not page.error, (page.exception, [e.value for e in page.error])
    return [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "") for c in page.get("plotly_chart")]


def test_faithfulness_on_demand(page):
    page.toggle(key="sal_faithful").set_value(True)
    page.run()
    page.slider(key="sal_steps").set_value(5)
    page.run()
    assert "Deletion / insertion" in press(page, "sal_curve_btn_gradcam")
    assert page.session_state[CALLS_KEY] == 2
    page.slider(key="sal_stages").set_value(2)
    page.run()
    assert any(t.startswith("Randomisation cascade") for t in press(page, "sal_sanity_btn_gradcam"))
    assert page.session_state[CALLS_KEY] == 3
    press(page, "sal_class_btn_gradcam")
    badges = [m.value for m in page.markdown if "class sensitivity ρ" in m.value]
    assert len(badges) == 1 and page.session_state[CALLS_KEY] == 4


def linked_page(methods: str) -> AppTest:
    """The saliency page opened from a link that asks for ``methods`` (through the router, as a browser does)."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["methods"] = methods
    at.run()
    at.switch_page("app_pages/saliency.py")
    at.run()
    assert not at.exception
    return at


def test_link_preselects_methods():
    at = linked_page("gradcam,occlusion,nonsense")
    assert at.multiselect(key="sal_methods").value == ["gradcam", "occlusion"]
    assert any("nonsense" in w.value for w in at.warning)


def test_the_attention_methods_are_offered_only_for_a_vit():
    """On the CNN the transformer methods are left out of the picker with the reason, and a link that asks for one
    is told why (on a ViT the engine runs them: tests/glimpse/saliency/test_transformer_methods.py)."""
    at = linked_page("gradcam,legrad")
    assert at.multiselect(key="sal_methods").value == ["gradcam"]
    assert "legrad" not in at.multiselect(key="sal_methods").options
    assert any(
        "Not offered for `efficientnet-lite0`: rollout, chefer, chefer_lrp, legrad, attnlrp" in c.value
        for c in at.caption
    )
    assert any("legrad in the link does not apply" in w.value and "not a ViT" in w.value for w in at.warning)


def test_bad_upload_shows_error():
    at = saliency_page()
    at.radio(key="saliency_source").set_value("Upload")
    at.run()
    at.file_uploader(key="saliency_upload").set_value(("broken.png", b"not an image at all", "image/png"))
    at.run()
    assert not at.exception
    assert any("not an image" in e.value for e in at.error)


def test_downloads_roundtrip(page):
    record = stored(page, RESULT_KEY)
    saved = read_npz(saliency_views.maps_npz(record))  # the one format the CLI and the bundles write too
    np.testing.assert_array_equal(saved.maps[1].values, record.maps[1].values)
    m = saved.maps[1]
    assert m.method == "gradcam" and m.layer == "head_act" and m.seed == 0
    assert saved.image.digest == record.digest and saved.image.size == record.image_size == (300, 451)
    png = saliency_views.grid_png(record, DisplayOptions(mode="absolute", colorscale="inferno"), {})
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_colour_ranges():
    values = np.array([[-4.0, 1.0], [2.0, 0.5]])
    assert colour_range(values, "signed", 100.0) == (-4.0, 4.0, 0.0)
    shown = shown_values(values, "positive")
    assert colour_range(shown, "positive", 100.0) == (0.0, 2.0, None)
    with pytest.raises(ValueError, match="mode"):
        shown_values(values, "loud")


def test_explain_class_follows_the_new_image():
    """The top-1 entry is a value of its own with a fixed label (a browser keeps showing a selected option's old
    label when it changes), and the caption under it names the new image's top-1."""
    at = saliency_page()
    key = "sal_target::efficientnet-lite0"
    assert at.selectbox(key=key).value == TOP1
    at.selectbox(key="saliency_sample").set_value("coffee")
    at.run()
    box = at.selectbox(key=key)
    assert box.value == TOP1 and box.options[0] == "Top-1 prediction"
    assert any(c.value.startswith("Explaining the top-1 prediction: **espresso**") for c in at.caption)
    box.set_value(5)
    at.run()
    assert not any(c.value.startswith("Explaining the top-1") for c in at.caption)
    at.selectbox(key="saliency_sample").set_value("astronaut")
    at.run()
    assert at.selectbox(key=key).value == 5  # a class the user picked stays picked


def test_a_class_picked_for_one_model_does_not_carry_over_to_another():
    """Class #5 of ImageNet is not #5 of the shapes ViT: a new model starts from its own top-1."""
    from components.sidebar import PICK_KEY

    at = saliency_page()
    at.selectbox(key="sal_target::efficientnet-lite0").set_value(5)
    at.run()
    at.selectbox(key=PICK_KEY).set_value("shapes-vit").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="sal_target::shapes-vit").value == TOP1


def test_method_picker_enter_takes_one_match_not_every_fuzzy_one():
    proto = saliency_page().multiselect(key="sal_methods").proto
    assert proto.select_all == 0  # no "Select N matches" row for Enter to hit
    modes = type(proto).DESCRIPTOR.fields_by_name["filter_mode"].enum_type
    assert modes.values_by_number[proto.filter_mode].name == "FILTER_MODE_CONTAINS"  # "RISE" ≠ GradientSHAP


def test_minmax_mode_stretches_a_map_far_from_zero():
    values = np.array([[0.60, 0.65], [0.70, 0.73]], dtype=np.float32)  # RISE-like
    shown = shown_values(values, "minmax")
    np.testing.assert_allclose(shown, [[0.0, 0.05 / 0.13], [0.10 / 0.13, 1.0]], rtol=1e-5)
    assert colour_range(shown, "minmax", 99.5) == (0.0, 1.0, None)
    assert not shown_values(np.full((2, 2), 0.7), "minmax").any()  # constant: no division by zero


def test_minmax_mode_on_the_page(page):
    page.radio(key="sal_mode").set_value("minmax")
    page.run()
    assert not page.exception
    overlay = next(c for c in page.get("plotly_chart") if c.proto.id.endswith("sal_map_gradcam"))
    heat = next(t for t in json.loads(overlay.proto.spec)["data"] if t["type"] == "heatmap")
    assert heat["zmin"] == 0.0 and heat["zmax"] == 1.0
    page.radio(key="sal_mode").set_value("signed")
    page.run()


def test_a_tiny_upload_is_flagged():
    at = saliency_page()
    at.radio(key="saliency_source").set_value("Upload")
    at.run()
    buf = io.BytesIO()
    Image.new("RGB", (1, 1), (120, 40, 200)).save(buf, format="PNG")
    at.file_uploader(key="saliency_upload").set_value(("dot.png", buf.getvalue(), "image/png"))
    at.run()
    assert not at.exception
    assert any("1×1 pixels, far below the model's input of 224×224" in w.value for w in at.warning)


def test_score_every_map_shows_progress_and_scores_all(page):
    page.toggle(key="sal_faithful").set_value(True)
    page.run()
    page.slider(key="sal_steps").set_value(5)
    page.run()
    calls = page.session_state[CALLS_KEY]
    next(b for b in page.button if b.key == "sal_score_all").click()
    page.run()
    assert not page.exception and not page.error
    record = stored(page, RESULT_KEY)
    scored = {key[1] for key in stored_under(page, "saliency_scores") if key[0] == record.key and key[2] == 5}
    assert scored == {m.method for m in record.maps}
    # each map once: its deletion/insertion curves and its class sensitivity
    rhos = {k[1]: v for k, v in stored_under(page, "saliency_class_sensitivity").items() if k[0] == record.key}
    assert set(rhos) == {m.method for m in record.maps} and all(-1 <= v <= 1 for v in rhos.values())
    assert page.session_state[CALLS_KEY] <= calls + 1 + len(record.maps)  # one batched call for every curve


@pytest.mark.slow
def test_the_batched_curves_are_each_maps_deletion_insertion_curves(page):
    """The page scores every map's curves in one deletion_curves batch; they are deletion_insertion's curves."""
    from glimpse.evaluation import deletion_insertion
    from models.registry import load_classifier

    record = stored(page, RESULT_KEY)
    scores = stored_under(page, "saliency_scores")
    bundle = load_classifier(record.model_id, device=record.device)
    for m in record.maps:
        ours = scores[(record.key, m.method, 5)]
        one = deletion_insertion(bundle, record.image.pixels, m.values, target=m.target.index, steps=5)
        np.testing.assert_array_equal(ours.fractions, one.fractions)
        np.testing.assert_allclose(ours.deletion_scores, one.deletion_scores, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ours.insertion_scores, one.insertion_scores, rtol=1e-5, atol=1e-6)
        assert ours.deletion_auc == pytest.approx(one.deletion_auc, rel=1e-5, abs=1e-6)
        assert ours.insertion_auc == pytest.approx(one.insertion_auc, rel=1e-5, abs=1e-6)
        assert (ours.target, ours.params) == (one.target, one.params)


def _map(method: str, values, params=()):
    from glimpse.saliency import SaliencyMap, Target

    return SaliencyMap(method, np.asarray(values, np.float32), tuple(params), "m", Target(0), "t", None, 0, None, 0.0)


def test_a_shared_scale_is_shared_only_among_maps_in_the_same_units():
    maps = [_map("gradient", [[0.1, -0.2]]), _map("smoothgrad", [[0.4, 0.0]]), _map("scorecam", [[100.0, -3.0]])]
    shared = saliency_views.ranges(maps, DisplayOptions(shared_scale=True, clip=100.0))
    assert shared[0] == shared[1] == pytest.approx((-0.4, 0.4, 0.0))  # ∂S/∂x, both
    assert shared[2] == pytest.approx((-100.0, 100.0, 0.0))  # Score-CAM's ±100 no longer blanks the gradients
    assert saliency_views.scale_groups(maps) == [["gradient", "smoothgrad"], ["scorecam"]]


def test_the_cost_is_shown_before_compute():
    at = saliency_page()
    label = next(e.label for e in at.expander if e.label.startswith("**Cost:**"))
    assert "1 image forward+backward" in label and " s on this cpu" in label  # the default panel: one shared pass
    at.multiselect(key="sal_methods").set_value(["gradient", "smoothgrad", "rise"])
    at.run()
    label = next(e.label for e in at.expander if e.label.startswith("**Cost:**"))
    assert "26 images forward+backward" in label and "500 forward only" in label  # 1 + 25 samples; 500 masks
    assert CALLS_KEY not in at.session_state  # counting computed nothing


def test_a_layer_with_negative_activations_is_flagged_for_grad_cam_pp():
    at = saliency_page()
    at.multiselect(key="sal_methods").set_value(["gradcampp"])
    at.run()
    assert not [w for w in at.warning if "non-negative" in w.value]  # head_act: after ReLU6
    at.selectbox(key="sal_layer").set_value("blocks.8")
    at.run()
    (warning,) = [w.value for w in at.warning if "non-negative" in w.value]
    assert "`blocks.8`" in warning and "of 112 channels" in warning and "`head_act`" in warning


def test_random_methods_are_marked_and_the_seed_says_who_uses_it():
    at = saliency_page()
    options = at.multiselect(key="sal_methods").options
    assert any(o.startswith("LIME") and "random" in o for o in options)
    assert not any(o.startswith("Grad-CAM (cam)") and "random" in o for o in options)
    assert "None of the chosen methods" in at.number_input(key="sal_seed").help
    at.multiselect(key="sal_methods").set_value(["gradient", "lime"])
    at.run()
    assert "Used here by: LIME." in at.number_input(key="sal_seed").help


def _probe_table(at: AppTest):
    return next((d.value for d in at.dataframe if "percentile in its map" in d.value.columns), None)


def test_a_probed_pixel_reads_every_map_there_and_is_marked(page):
    """Issue 28, on Saliency: a pixel of the explained image (typed; a click on a map fills the same inputs)
    shows each map's value at the cell holding it (the map at the model input over the image) and its
    percentile; every map marks it; a click on a map's grid selects the image pixel whose centre it holds."""
    from components import probe as probe_widgets
    from glimpse.probe import cell, percentile

    record = stored(page, RESULT_KEY)
    h, w = record.image.pixels.shape[:2]
    calls = page.session_state[CALLS_KEY]
    assert _probe_table(page) is None  # nothing probed yet
    page.number_input(key=saliency_views.PROBE.x).set_value(w - 1)
    page.number_input(key=saliency_views.PROBE.y).set_value(h // 3).run()
    assert not page.exception
    table = _probe_table(page)
    assert list(table["map"]) == [m.method for m in record.maps]
    for row, m in zip(table.to_dict("records"), record.maps):
        r, c = cell(m.values.shape, (h, w), w - 1, h // 3)
        assert c == m.values.shape[1] - 1 and row["value"] == float(m.values[r, c])
        assert row["percentile in its map"] == percentile(m.values.astype(np.float64), float(m.values[r, c]))
    maps = [c for c in page.get("plotly_chart") if (c.key or "").startswith("sal_map_")]
    assert len(maps) == len(record.maps)
    for chart in maps:
        traces = json.loads(chart.proto.spec)["data"]
        assert any(t.get("marker", {}).get("symbol") == "circle-open" for t in traces), chart.key
    assert page.session_state[CALLS_KEY] == calls  # probing recomputes nothing
    # a click at the display grid's last cell is the image's last pixel
    grid = record.thumbnail.shape[:2]
    state = {"k": {"selection": {"points": [{"x": grid[1] - 1, "y": grid[0] - 1}]}}}
    keys = probe_widgets.Keys("x", "y")
    import unittest.mock

    with unittest.mock.patch.object(probe_widgets.st, "session_state", state):
        probe_widgets.clicked("k", grid, (h, w), keys)
    assert (state["x"], state["y"]) == (w - 1, h - 1)


def test_occlusion_starts_from_a_window_scaled_to_the_models_input():
    """On the 224-px default the window is 32; picking the 32-px shapes ViT in the sidebar gives a fresh 5-px
    window (a 32-px one would black out the whole scene at every position: a constant map)."""
    from components.sidebar import PICK_KEY

    at = linked_page("occlusion")
    assert at.number_input(key="sal_param_occlusion_window").value == 32
    at.selectbox(key=PICK_KEY).set_value("shapes-vit").run()
    assert not at.exception, at.exception
    assert at.number_input(key="sal_param_occlusion_window_32x32").value == 5
    assert at.number_input(key="sal_param_occlusion_stride_32x32").value == 2
