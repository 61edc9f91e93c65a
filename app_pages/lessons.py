"""Lessons: eight claims from the literature, each checked live on the embedded models."""

import streamlit as st

from components.lessons import controls, views, warmup
from components.lessons.content import KEYS, LESSONS
from components.sidebar import current

# every lesson's figure at its defaults, computed in the background while the first one is read (once per process)
warmup.start(current().device)

present = controls.presenting()
index = controls.lesson_index(KEYS)
if present:
    st.markdown(views.PRESENTER_CSS, unsafe_allow_html=True)
else:
    st.title("Lessons")
    st.caption(
        "Each lesson is a claim from the literature that you check live: two paragraphs, a figure that answers "
        "its controls, a question. Link to one with `?lesson=KEY`; `?present=1` is the presenter mode (large "
        "type, no sidebar, ← → to step through)."
    )
    choice = st.selectbox("Lesson", range(len(LESSONS)), index=index, key="lesson_pick",
                          format_func=lambda i: f"{i + 1}. {LESSONS[i].title}")  # fmt: skip
    if choice != index:
        controls.go_to(KEYS, choice)
        index = choice

views.show(LESSONS[index], index + 1, current().device)

left, middle, right = st.columns([1, 4, 1])
if left.button("Previous", icon=":material/arrow_back:", shortcut="Left", key="lesson_prev", disabled=index == 0):
    controls.go_to(KEYS, index - 1)
    st.rerun()
if right.button("Next", icon=":material/arrow_forward:", shortcut="Right", key="lesson_next",
                disabled=index == len(LESSONS) - 1):  # fmt: skip
    controls.go_to(KEYS, index + 1)
    st.rerun()
middle.caption(
    f"Lesson {index + 1} of {len(LESSONS)} · ← → to step"
    + ("" if present else " · add `?present=1` for the presenter mode")
)
