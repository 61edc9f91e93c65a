"""The Evaluate page: which saliency map is right, tested where the evidence is known or marked.

Every tab but the data-set runner is a :class:`~components.evaluate.base.BenchmarkTab`: controls that make a
frozen request, a job of small steps (its cost said before it starts, progress, the table growing as steps
finish, Cancel), then the table and its downloads. A step is one image or a few (one retraining level for
DiffROAR), so another session's click on the same model waits one step at most.
"""

from __future__ import annotations

import streamlit as st

from components.evaluate.dataset import dataset_tab
from components.evaluate.diffroar import DiffRoarTab, InversionTab
from components.evaluate.leakage import LeakageTab
from components.evaluate.masks import MasksTab, ShapesTab
from components.evaluate.perturbation import PgiTab, SensitivityTab
from components.evaluate.study import StudyTab

CITATION = 'Shah, Jain & Netrapalli, "Do Input Gradients Highlight Discriminative Features?", NeurIPS 2021'

TABS = (
    "Leakage (BlockDigits)",
    "DiffROAR (BlockDigits)",
    "Shapes (exact masks)",
    "Your masks",
    "Class sensitivity",
    "PGI / PGU",
    "Complexity study",
    "A data set",
)


#: the selected tab's session-state key (set it to a tab's name to open that tab)
TAB_KEY = "eval_tab"


def page(model_id: str, device: str) -> None:
    """The selected tab only (the others draw nothing until picked, so opening the page measures and loads
    only what its first tab needs), each benchmark on the sidebar's classifier and device where it uses one."""
    tabs = st.tabs(list(TABS), key=TAB_KEY, on_change="rerun")
    draw = {
        TABS[0]: lambda: LeakageTab(model_id, device).draw(),
        TABS[1]: lambda: (DiffRoarTab(model_id, device).draw(), st.divider(), InversionTab(model_id, device).draw()),
        TABS[2]: lambda: ShapesTab(model_id, device).draw(),
        TABS[3]: lambda: MasksTab(model_id, device).draw(),
        TABS[4]: lambda: SensitivityTab(model_id, device).draw(),
        TABS[5]: lambda: PgiTab(model_id, device).draw(),
        TABS[6]: lambda: StudyTab(model_id, device).draw(),
        TABS[7]: lambda: dataset_tab(model_id, device),
    }
    for name, tab in zip(TABS, tabs):
        if tab.open:
            with tab:
                draw[name]()
