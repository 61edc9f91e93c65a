"""Model lab: inside the classifier. What a class or channel responds to, its facets, and its blind spots."""

import streamlit as st

from components import loaders, session_results, sidebar
from components import model_lab_ui as ui
from components.image_input import image_picker
from glimpse.lab import Objective
from models.lab import late_layer

st.title("Model lab")
st.caption(
    "Look inside the classifier rather than at one image: what its classes and channels respond to, the "
    "different faces of one class, and very different images it cannot tell apart. Every tab runs on the "
    "sidebar's classifier; on the CPU, smaller sizes and fewer steps answer in seconds."
)

choice = sidebar.current()
bundle = loaders.classifier_or_stop(choice.model_id, choice.device)
default_class = 285 if bundle.num_classes > 285 else 0  # Egyptian cat: the shipped samples have real members
vis_tab, facets_tab, examples_tab, blind_tab = st.tabs(["Feature visualisation", "Facets", "Top images", "Blind spots"])

with vis_tab:
    st.caption(f"Gradient ascent on a class logit or a channel's mean activation ({ui.VIS_CITATION}).")
    kind = st.radio("Maximise", ["A class", "A channel"], horizontal=True, key="lab_vis_kind")
    if kind == "A class":
        objective = Objective("class", ui.class_picker(bundle, "lab_vis_class", default_class))
    else:
        a, b = st.columns(2)
        layer = ui.layer_picker(bundle, "lab_vis_layer", a)
        objective = Objective("channel", int(b.number_input("Channel", 0, 4095, 0, key="lab_vis_channel")), layer)
    steps, side, seed = ui.steps_and_size(bundle, "lab_vis")
    if st.button("Visualise", type="primary", icon=":material/play_arrow:", key="lab_vis_go"):
        ui.run("vis", "feature visualisation",
               lambda: ui.visualization(bundle.model_id, choice.device, objective, steps, side, seed))  # fmt: skip
    ui.cost_caption(bundle.model_id, choice.device, steps, side)
    vis = session_results.get(ui.KEYS["vis"])
    if vis is not None:
        ui.visualization_view(vis, bundle)

with facets_tab:
    st.caption(
        f"Real images of the class are clustered (k-means on {late_layer(bundle)}'s activations) and each "
        f"cluster's mean image starts its own visualisation ({ui.FACETS_CITATION})."
    )
    class_index = ui.class_picker(bundle, "lab_facets_class", default_class)
    pool = ui.pool_picker(bundle, class_index, "lab_facets")
    k = st.slider("Facets", 2, 5, 3, key="lab_facets_k")
    steps, side, seed = ui.steps_and_size(bundle, "lab_facets", default_steps=64)
    if st.button("Find the facets", type="primary", icon=":material/play_arrow:", key="lab_facets_go",
                 disabled=pool is None):  # fmt: skip
        ui.run("facets", "facets",
               lambda: (ui.facets(bundle.model_id, choice.device, class_index, pool, k, steps, side, seed), pool))  # fmt: skip
    ui.cost_caption(bundle.model_id, choice.device, steps, side, runs=k)
    stored = session_results.get(ui.KEYS["facets"])
    if stored is not None:
        ui.facets_view(stored[0], stored[1], bundle)

with examples_tab:
    st.caption("The images, and the patch around the strongest position, that excite one channel most.")
    a, b, c = st.columns(3)
    layer = ui.layer_picker(bundle, "lab_ex_layer", a)
    channel = int(b.number_input("Channel", 0, 4095, 0, key="lab_ex_channel"))
    top = int(c.slider("Top", 4, 16, 8, key="lab_ex_top"))
    pool = ui.pool_picker(bundle, None, "lab_ex")
    if st.button("Find the top images", type="primary", icon=":material/play_arrow:", key="lab_ex_go",
                 disabled=pool is None):  # fmt: skip
        ui.run("examples", "top images",
               lambda: (ui.examples(bundle.model_id, choice.device, layer, channel, pool, top), pool))  # fmt: skip
    stored = session_results.get(ui.KEYS["examples"])
    if stored is not None:
        ui.examples_view(*stored)

with blind_tab:
    st.caption(
        "Walk from the source image towards a very different target while the model's confidence in the "
        f"source's class stays put ({ui.BLIND_CITATION}). The end point looks like the target; the model still "
        "sees the source class."
    )
    left, right = st.columns(2)
    with left:
        source = image_picker(key="lab_source")
    if source is None:
        st.info("Pick a source image.")
        st.stop()
    with right:
        target = ui.target_picker(source)
        a, b, c = st.columns(3)
        steps = int(a.slider("Steps", 20, 400, 100, step=20, key="lab_bs_steps"))
        step_size = float(b.select_slider("Step size", [0.01, 0.02, 0.04, 0.08], 0.04, key="lab_bs_step"))
        pthresh = float(c.select_slider("Largest drop", [0.05, 0.1, 0.2, 0.3], 0.2, key="lab_bs_pthresh"))
    if st.button("Traverse", type="primary", icon=":material/play_arrow:", key="lab_bs_go", disabled=target is None):
        ui.run("blind", "level-set traversal",
               lambda: ui.traversal(bundle.model_id, choice.device, source, target, steps, step_size, pthresh, 0))  # fmt: skip
    ui.cost_caption(bundle.model_id, choice.device, steps, None, per_step=2)  # a step and its 8-bit check
    stored = session_results.get(ui.KEYS["blind"])
    if stored is not None:
        ui.traversal_view(*stored, bundle)
