"""Saliency: which pixels does the classifier's decision depend on? Many methods side by side, checked."""

import streamlit as st

from components import loaders, saliency_ui, saliency_views, sidebar
from components.image_input import image_picker, size_warning
from glimpse.saliency import list_methods
from models.registry import ModelLoadError

st.title("Saliency")
st.caption(
    "Pick an image and a class, choose methods, press **Compute**. Maps are raw and signed; the display "
    "options below the grid only change how they are drawn."
)

choice = sidebar.current()
try:
    bundle = loaders.classifier(choice.model_id, choice.device)
except (ModelLoadError, ValueError) as err:
    st.error(f"Could not load the classifier {choice.model_id!r}: {err}. Pick another one in the sidebar.")
    st.stop()
infos = {m.name: m for m in list_methods()}

left, right = st.columns([1, 1.4])
with left:
    image = image_picker(key="saliency")
if image is None:
    st.info("Pick a sample image or upload one to begin.")
    st.stop()
top = loaders.predictions(choice.model_id, choice.device, image)
with left:
    size_warning(image, bundle.input_size)
with right:
    st.markdown(f"**Top-5 predictions** · `{bundle.model_id}`")
    saliency_views.predictions_view(top)
    target = saliency_ui.target_controls(bundle, top)
selected = saliency_ui.method_picker(list(infos.values()))

# No form: a parameter change reruns the page (cheap: maps are computed only on Compute), so the cost below
# and the layer check always describe the panel as it stands.
methods = saliency_ui.method_controls(bundle, selected, infos)
if selected:
    saliency_ui.activation_warning(choice.model_id, choice.device, image, methods, infos)
    saliency_ui.cost_view(choice.model_id, choice.device, methods, infos)
compute = st.button("Compute", type="primary", icon=":material/play_arrow:")

saliency_ui.cancelled_notice()
if compute:
    if not selected:
        st.warning("Choose at least one method.")
    else:
        try:
            with saliency_ui.cancellable("Computation cancelled; the previous maps are kept."):
                st.session_state[saliency_ui.RESULT_KEY] = saliency_ui.compute(
                    choice.model_id, choice.device, image, target, methods
                )
        except (ValueError, ModelLoadError) as err:
            st.error(f"{err}. Change the parameter it names and press Compute again.")
        except RuntimeError as err:  # e.g. out of GPU memory
            st.error(f"The computation failed: {err}. Try fewer methods, fewer samples, or the CPU device.")


@st.fragment
def results() -> None:
    record = st.session_state.get(saliency_ui.RESULT_KEY)
    if record is None:
        return
    st.divider()
    if record.digest != image.digest or record.model_id != choice.model_id:
        st.info(f"These maps are for {record.image_name} on {record.model_id}; press Compute to update them.")
    target_label = record.maps[0].target_label
    how = "computed" if record.computed else "from cache"
    st.markdown(f"**Target:** {target_label} · {len(record.maps)} maps {how} in {record.seconds:.2f} s")
    options = saliency_ui.display_controls()
    saliency_views.shared_scale_note(record, options, infos)
    faithful = st.toggle(
        "Faithfulness on demand",
        key="sal_faithful",
        help="Deletion/insertion curves (Petsiuk et al. 2018) and the randomisation sanity check "
        "(Adebayo et al. 2018), per map.",
    )
    steps = 20
    if faithful:
        c1, c2, c3 = st.columns(3)
        steps = c1.slider("Deletion/insertion steps", 5, 50, 20, key="sal_steps")
        stages = c2.slider("Sanity-check stages", 2, 10, 7, key="sal_stages")
        if c3.button("Score every map", key="sal_score_all"):
            saliency_ui.score_all(record, steps)

    def extra(m) -> None:
        if not faithful:
            return
        b1, b2 = st.columns(2)
        if b1.button("Deletion / insertion", key=f"sal_curve_btn_{m.method}"):
            with st.spinner("Deletion and insertion curves…"):
                saliency_ui.score(record, m, steps)
        if b2.button("Sanity check", key=f"sal_sanity_btn_{m.method}"):
            try:
                with saliency_ui.cancellable("Sanity check cancelled."):
                    saliency_ui.sanity_check(record, m, stages)
            except (ValueError, RuntimeError) as err:
                st.error(f"Sanity check failed: {err}")
        curves = st.session_state.get(saliency_ui.SCORES_KEY, {}).get((record.key, m.method, steps))
        if curves is not None:
            st.plotly_chart(saliency_views.curves_figure(curves), width="stretch", key=f"sal_curve_{m.method}")
        check = st.session_state.get(saliency_ui.SANITY_KEY, {}).get((record.key, m.method))
        if check is not None:
            st.plotly_chart(saliency_views.sanity_figure(check), width="stretch", key=f"sal_sanity_{m.method}")

    saliency_views.map_grid(record, options, infos, extra=extra)
    d1, d2, _ = st.columns([1, 1, 2])
    d1.download_button(
        "PNG of the grid",
        data=lambda: saliency_views.grid_png(record, options, infos),
        file_name=f"saliency_{record.image_name.rsplit('.', 1)[0]}.png",
        mime="image/png",
        icon=":material/image:",
        on_click="ignore",
    )
    d2.download_button(
        "NPZ of the raw maps",
        data=lambda: saliency_views.maps_npz(record),
        file_name=f"saliency_{record.image_name.rsplit('.', 1)[0]}.npz",
        mime="application/octet-stream",
        icon=":material/download:",
        on_click="ignore",
    )


results()
