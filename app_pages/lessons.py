"""Lessons: eight claims from the literature, each checked live on the embedded models."""

import streamlit as st

from components import lesson_warmup
from components import lessons_ui as ui
from components.sidebar import current

# every lesson's figure at its defaults, computed in the background while the first one is read (once per process)
lesson_warmup.start(current().device)

present = st.query_params.get("present") == "1"
index = ui.lesson_index()
if present:
    st.markdown(ui.PRESENTER_CSS, unsafe_allow_html=True)
else:
    st.title("Lessons")
    st.caption(
        "Each lesson is a claim from the literature that you check live: two paragraphs, a figure that answers "
        "its controls, a question. Link to one with `?lesson=KEY`; `?present=1` is the presenter mode (large "
        "type, no sidebar, ← → to step through)."
    )
    choice = st.selectbox("Lesson", range(len(ui.LESSONS)), index=index, key="lesson_pick",
                          format_func=lambda i: f"{i + 1}. {ui.LESSONS[i].title}")  # fmt: skip
    if choice != index:
        ui.go_to(choice)
        index = choice

ui.show(ui.LESSONS[index], index + 1, current().device)

left, middle, right = st.columns([1, 4, 1])
if left.button("Previous", icon=":material/arrow_back:", shortcut="Left", key="lesson_prev", disabled=index == 0):
    ui.go_to(index - 1)
    st.rerun()
if right.button("Next", icon=":material/arrow_forward:", shortcut="Right", key="lesson_next",
                disabled=index == len(ui.LESSONS) - 1):  # fmt: skip
    ui.go_to(index + 1)
    st.rerun()
middle.caption(
    f"Lesson {index + 1} of {len(ui.LESSONS)} · ← → to step"
    + ("" if present else " · add `?present=1` for the presenter mode")
)
