"""The Compare page end to end (AppTest): compute, re-slice without recompute, export -> import restores the
same run, a hostile bundle is refused, and generate -> classify -> explain on the embedded models."""

import io
import json
import zipfile

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from components import compare
from components.compare import services, views
from glimpse.export import read_bundle
from tests.apptest_support import open_page, stored


@pytest.fixture
def calls(monkeypatch):
    """Count real runs (the wrapped function is the real one, on the real embedded models)."""
    made = []
    real = services.run_compare

    def counting(*args, **kwargs):
        made.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "run_compare", counting)
    services.compare.clear()
    return made


def compare_page() -> AppTest:
    return open_page("app_pages/compare.py", timeout=180)


def press(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    at.run()
    assert not at.exception, at.exception
    return at


def test_compute_reslice_export_import(calls):
    at = compare_page()
    assert at.info and "Compute" in at.info[0].value
    at.multiselect(key="cmp_methods").set_value(["gradient", "gradcam"])
    at.slider(key="cmp_k").set_value(10.0)
    press(at, "Compute")
    assert not at.error, [e.value for e in at.error]
    assert len(calls) == 1
    run = stored(at, compare.RUN_KEY)
    assert "saliency: Grad-CAM" in run.map_names and run.params["k"] == 10.0
    charts = at.get("plotly_chart")
    assert len(charts) == len(run.map_names) + 2  # the input, every panel, the agreement matrix
    assert any("inside" in str(df.value.columns.tolist()) for df in at.dataframe)

    # display controls re-slice the stored run
    at.slider(key="cmp_opacity").set_value(0.3)
    at.radio(key="cmp_norm").set_value("min-max per panel")
    at.pills(key="cmp_panels").unselect("complexity: MSG s=8")
    at.run()
    assert not at.exception and len(calls) == 1

    press(at, "Prepare bundle")
    assert at.get("download_button")
    data = stored(at, compare.EXPORT_KEY)[1]

    # a fresh session imports it: same maps, same controls, nothing recomputed
    fresh = compare_page()
    fresh.file_uploader(key="cmp_import").set_value(("run.zip", data, "application/zip"))
    fresh.run()
    assert not fresh.exception, fresh.exception
    assert not fresh.error, [e.value for e in fresh.error]
    back = stored(fresh, compare.RUN_KEY)
    assert back.map_names == run.map_names
    for a, b in zip(run.maps, back.maps):
        np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(back.image, run.image)
    assert back.tables["agreement"] == run.tables["agreement"]
    assert fresh.slider(key="cmp_k").value == 10.0
    assert fresh.multiselect(key="cmp_methods").value == ["gradient", "gradcam"]
    assert fresh.slider(key="cmp_opacity").value == 0.3
    assert fresh.radio(key="cmp_norm").value == "min-max per panel"
    assert fresh.pills(key="cmp_panels").value == [n for n in run.map_names if n != "complexity: MSG s=8"]
    assert len(calls) == 1


def test_hostile_bundle_is_refused_with_a_message():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("manifest.json", "{}")
        zf.writestr("../../escape.png", b"x")
    at = compare_page()
    at.file_uploader(key="cmp_import").set_value(("evil.zip", buf.getvalue(), "application/zip"))
    at.run()
    assert not at.exception, at.exception
    assert at.error and "path traversal" in at.error[0].value
    assert stored(at, compare.RUN_KEY) is None


def test_generate_classify_explain(calls):
    at = compare_page()
    at.radio(key="cmp_mode").set_value("Generate from a prompt")
    at.run()
    at.text_input(key="cmp_prompt").set_value("a red circle")
    at.slider(key="cmp_steps").set_value(3)
    at.multiselect(key="cmp_methods").set_value(["gradcam"])
    press(at, "Compute")
    assert not at.error, [e.value for e in at.error]
    run = stored(at, compare.RUN_KEY)
    assert run.prompt == "a red circle" and run.params["steps"] == 3
    assert at.selectbox(key="cmp_word").value == "attention: circle (#3)"
    assert {m.label for m in at.metric} >= {"Spearman ρ", "Word peak in class region"}


def _grid_panels(at: AppTest) -> set[str]:
    """The map names drawn in the grid (each panel's chart key is cmp_panel_<name>)."""
    keys = (c.key or "" for c in at.get("plotly_chart"))
    return {k.removeprefix("cmp_panel_") for k in keys if k.startswith("cmp_panel_")}


def test_panel_selection_follows_the_run(calls):
    """Image run -> prompt run: the word panels are drawn and exported; back to an image: no word chips."""
    at = compare_page()
    at.multiselect(key="cmp_methods").set_value(["gradcam"])
    press(at, "Compute")
    image_run = stored(at, compare.RUN_KEY)
    assert at.pills(key="cmp_panels").value == list(image_run.map_names)
    hidden = "complexity: MSG s=1"  # a panel the user turns off stays off in later runs
    at.pills(key="cmp_panels").unselect(hidden)
    at.run()

    at.radio(key="cmp_mode").set_value("Generate from a prompt")
    at.run()
    at.text_input(key="cmp_prompt").set_value("a red circle")
    at.slider(key="cmp_steps").set_value(1)
    press(at, "Compute")
    prompt_run = stored(at, compare.RUN_KEY)
    words = [n for n in prompt_run.map_names if n.startswith("attention: ")]
    assert words and prompt_run.prompt == "a red circle"
    expected = [n for n in prompt_run.map_names if n != hidden]
    assert at.pills(key="cmp_panels").value == expected
    assert _grid_panels(at) == set(expected) >= set(words)
    press(at, "Prepare bundle")
    exported = read_bundle(stored(at, compare.EXPORT_KEY)[1])
    assert exported.params["display"]["panels"] == expected
    at.selectbox(key="cmp_word").set_value(words[1])
    at.run()
    # another page drops the widgets' state; coming back restores the choices
    at.switch_page("app_pages/home.py")
    at.run()
    at.switch_page("app_pages/compare.py")
    at.run()
    assert at.pills(key="cmp_panels").value == expected and at.selectbox(key="cmp_word").value == words[1]

    at.radio(key="cmp_mode").set_value("Image")
    at.run()
    press(at, "Compute")
    back = stored(at, compare.RUN_KEY)
    assert back.prompt is None
    expected = [n for n in back.map_names if n != hidden]
    panels = at.pills(key="cmp_panels")
    assert panels.value == expected
    # the browser keeps a widget's last value unless the script sends a new one: it must be sent, or the
    # word chips of the prompt run stay on screen
    assert panels.proto.set_value and list(panels.proto.raw_values) == expected
    assert _grid_panels(at) == set(expected)
    press(at, "Prepare bundle")
    exported = read_bundle(stored(at, compare.EXPORT_KEY)[1])
    assert exported.params["display"]["panels"] == expected


def test_name_pickers_take_one_match_on_enter():
    at = compare_page()
    for key in ("cmp_methods",):
        proto = at.multiselect(key=key).proto
        modes = type(proto).DESCRIPTOR.fields_by_name["filter_mode"].enum_type
        assert proto.select_all == 0 and modes.values_by_number[proto.filter_mode].name == "FILTER_MODE_CONTAINS"


@pytest.mark.parametrize(
    "values",
    [np.array([[-1.0, 0.5], [2.0, 0.0]]), np.array([[0.0, 0.5], [2.0, 0.1]]), np.array([[-3.0, -0.5], [-2.0, -0.1]])],
    ids=["signed", "unsigned", "all-negative"],
)
def test_compare_panels_colour_raw_maps_as_the_report_does(values):
    from glimpse.export import colour_scale

    _, options = views._shown(values, "raw", "Viridis")
    name, lo, hi = colour_scale(values)
    assert (options["colorscale"], options["zmin"], options["zmax"]) == (name, pytest.approx(lo), pytest.approx(hi))


def test_generate_classify_explain_stays_in_one_domain_with_the_shapes_classifier():
    """The embedded shapes classifier reads what the embedded text-to-image model draws (offline, one domain)."""
    at = compare_page()
    at.sidebar.selectbox(key="glimpse_embedded_pick").select("shapes-classifier").run()
    at.radio(key="cmp_mode").set_value("Generate from a prompt")
    at.run()
    at.text_input(key="cmp_prompt").set_value("a red circle to the left of a blue square")
    at.multiselect(key="cmp_methods").set_value(["gradcam"])
    press(at, "Compute")
    assert not at.error, [e.value for e in at.error]
    assert stored(at, compare.RUN_KEY).models["classifier"] == "shapes-classifier"
    assert any("explains **red circle**" in c.value and "top-1: **red circle**" in c.value for c in at.caption)
    assert {m.label: m.value for m in at.metric}["Word peak in class region"] == "hit"


def _heat(at: AppTest, key: str) -> dict:
    chart = next(c for c in at.get("plotly_chart") if (c.key or "").endswith(key))
    return next(t for t in json.loads(chart.proto.spec)["data"] if t["type"] == "heatmap")


def test_attention_panels_fade_at_the_low_end_as_on_the_cross_attention_page():
    """Issue 25: Compare's attention panels tinted the whole image purple at the low end of the scale. They are
    drawn by the Cross-attention page's overlay: transparent at 0, opaque at the top; saliency panels unchanged."""
    from components.attention import views as attention_views

    at = compare_page()
    at.radio(key="cmp_mode").set_value("Generate from a prompt")
    at.run()
    at.text_input(key="cmp_prompt").set_value("a red circle")
    at.multiselect(key="cmp_methods").set_value(["gradient"])
    press(at, "Compute")
    run = stored(at, compare.RUN_KEY)
    word = next(e for e in run.maps if e.kind == "attention")
    saliency = next(e for e in run.maps if e.kind == "saliency")
    heat = _heat(at, f"cmp_panel_{word.name}")
    assert heat["zmin"] == 0.0 and heat["zmax"] > 0 and heat["opacity"] == 1.0  # the scale's alpha is the opacity
    low, high = heat["colorscale"][0][1], heat["colorscale"][-1][1]
    assert low.endswith(", 0)") and high.endswith(", 0.6)")  # no attention: the image itself
    display = {"norm": "raw", "colorscale": "Viridis", "opacity": 0.6}
    image = np.full((16, 16, 3), 200, np.uint8)
    values, options = views._shown(word.values, "raw", "Viridis")
    same = attention_views.overlay_figure(
        values, image, label="raw", height=200, zmin=options["zmin"], zmax=options["zmax"], opacity=0.6
    )
    assert same.data[1].colorscale == tuple(tuple(s) for s in heat["colorscale"])
    assert views.panel(run, word.name, display, (16, 16), image).data[1].colorscale == same.data[1].colorscale
    plain = _heat(at, f"cmp_panel_{saliency.name}")
    assert plain["opacity"] == 0.6 and isinstance(plain["colorscale"], list)
    assert not plain["colorscale"][0][1].startswith("rgba")  # a saliency map keeps its plain colour scale


def test_the_grid_is_drawn_row_by_row_with_one_header_height(calls):
    """Issue 25: the grid was filled column by column under an st.image input, so a panel below the input
    started ~80 px above its neighbours; long names were cut in the panel titles and in the picker's chips."""
    at = compare_page()
    at.multiselect(key="cmp_methods").set_value(["gradcam"])
    press(at, "Compute")
    run = stored(at, compare.RUN_KEY)
    n = at.number_input(key="cmp_columns").value
    cells = [
        c
        for c in at.columns
        if any((p.key or "").startswith(("cmp_panel_", "cmp_input")) for p in c.get("plotly_chart"))
    ]
    assert len(cells) == 1 + len(run.map_names)  # one chart per cell: rows, not stacked columns
    assert all(len(c.get("plotly_chart")) == 1 and not c.get("image") for c in cells)
    layouts = [json.loads(c.get("plotly_chart")[0].proto.spec)["layout"] for c in cells]
    assert {(lay["height"], lay["margin"]["t"]) for lay in layouts} == {(views.PANEL_HEIGHT, views.PANEL_TOP)}
    assert all(lay["title"]["text"].count("<br>") == 1 for lay in layouts)  # every header has two lines
    assert len(cells) > n  # (more than one row, so the rows are what is checked)
    assert at.pills(key="cmp_panels").value == list(run.map_names)  # wrapping pills, not a one-line multiselect


def test_panel_titles_put_the_lens_below_the_map():
    assert views.panel_title("complexity: colours/px (4 bit)").startswith("colours/px (4 bit)<br>")
    assert "complexity" in views.panel_title("complexity: colours/px (4 bit)").split("<br>")[1]
    assert views.panel_title("plain").startswith("plain<br>")


def _probe_table(at: AppTest, column: str):
    return next((d.value for d in at.dataframe if column in d.value.columns), None)


def test_a_probed_pixel_reads_every_map_there_and_is_marked_on_every_panel(calls):
    """Issue 28: a pixel chosen on Compare (typed here; a click on a panel fills the same inputs) shows, for every
    map, the array's value at the cell holding it and its percentile; the words by attention; every panel marks
    it; the clicked grid cell maps to the image pixel whose centre it holds; the exported bundle keeps the probe."""
    from components.compare import controls
    from glimpse.probe import PROBE_TABLE, probe

    at = compare_page()
    at.sidebar.selectbox(key="glimpse_embedded_pick").select("shapes-classifier").run()
    at.radio(key="cmp_mode").set_value("Generate from a prompt")
    at.run()
    at.text_input(key="cmp_prompt").set_value("a red circle to the left of a blue square")
    at.slider(key="cmp_steps").set_value(3)
    at.multiselect(key="cmp_methods").set_value(["gradcam", "gradient"])
    press(at, "Compute")
    run = stored(at, compare.RUN_KEY)
    assert _probe_table(at, "percentile in its map") is None  # nothing probed yet
    at.number_input(key=controls.PROBE_X).set_value(9)
    at.number_input(key=controls.PROBE_Y).set_value(20).run()
    assert not at.exception
    want = probe(run, 9, 20)
    table = _probe_table(at, "percentile in its map")
    for row, value in zip(table.to_dict("records"), [v for v in want.values if v.kind != "attention"]):
        entry = run.map(value.name)
        r, c = value.cell
        assert row["map"] == value.name and row["value"] == float(entry.values[r, c])
        assert row["percentile in its map"] == value.percentile
    words = _probe_table(at, "share")
    assert list(words["word"]) == [w for w, _, _ in want.words] and abs(words["share"].sum() - 1) < 1e-9
    marked = [c for c in at.get("plotly_chart") if (c.key or "").startswith(("cmp_panel_", "cmp_input"))]
    for chart in marked:
        traces = json.loads(chart.proto.spec)["data"]
        assert any(t.get("marker", {}).get("symbol") == "circle-open" for t in traces), chart.key
    # the exported bundle carries the probe as a table
    press(at, "Prepare bundle")
    bundle = read_bundle(stored(at, compare.EXPORT_KEY)[1])
    assert [r["map"] for r in bundle.tables[PROBE_TABLE]] == [v.name for v in want.values]


def test_a_click_selects_the_pixel_whose_centre_the_cell_holds(monkeypatch):
    from components import probe as probe_widgets
    from components.compare import controls

    state = {"k": {"selection": {"points": [{"x": 0, "y": 159}]}}}
    monkeypatch.setattr(probe_widgets.st, "session_state", state)
    probe_widgets.clicked("k", (160, 107), (480, 321), controls.PROBE)
    assert (state[controls.PROBE_X], state[controls.PROBE_Y]) == (1, 478)
    state["k"] = {"selection": {"points": []}}
    probe_widgets.clicked("k", (160, 107), (480, 321), controls.PROBE)  # a cleared selection keeps the pixel
    assert (state[controls.PROBE_X], state[controls.PROBE_Y]) == (1, 478)
