"""Model lab: inside the classifier. What a class or channel responds to, its facets, and its blind spots."""

import streamlit as st

from components import loaders, sidebar
from components.model_lab import BLIND_CITATION, FACETS_CITATION, VIS_CITATION, controls, services, state, views
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
    st.caption(f"Gradient ascent on a class logit or a channel's mean activation ({VIS_CITATION}).")
    if (vis := controls.visualise(bundle, choice.device, default_class)) is not None:
        state.run("vis", "feature visualisation", lambda: services.visualization(**vis.arguments()))
    if (found := state.stored("vis")) is not None:
        views.visualization_view(found, bundle)

with facets_tab:
    st.caption(
        f"Real images of the class are clustered (k-means on {late_layer(bundle)}'s activations) and each "
        f"cluster's mean image starts its own visualisation ({FACETS_CITATION})."
    )
    if (fac := controls.find_facets(bundle, choice.device, default_class)) is not None:
        state.run("facets", "facets", lambda: (services.facets(**fac.arguments()), fac.pool))
    if (found := state.stored("facets")) is not None:
        views.facets_view(*found, bundle)

with examples_tab:
    st.caption("The images, and the patch around the strongest position, that excite one channel most.")
    if (top := controls.top_images(bundle, choice.device)) is not None:
        state.run("examples", "top images", lambda: (services.examples(**top.arguments()), top.pool))
    if (found := state.stored("examples")) is not None:
        views.examples_view(*found)

with blind_tab:
    st.caption(
        "Walk from the source image towards a very different target while the model's confidence in the "
        f"source's class stays put ({BLIND_CITATION}). The end point looks like the target; the model still "
        "sees the source class."
    )
    if (walk := controls.traverse(bundle, choice.device)) is not None:
        state.run("blind", "level-set traversal", lambda: services.traversal(**walk.arguments()))
    if (found := state.stored("blind")) is not None:
        views.traversal_view(*found, bundle)
