"""The shared sidebar: compute device and classifier choice, kept in st.session_state."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
import torch

from glimpse.devices import resolve_device
from models.registry import DEFAULT_CLASSIFIER, EMBEDDED_CLASSIFIERS, ModelLoadError

DEVICE_KEY = "glimpse_device"
MODEL_KEY = "glimpse_model_id"
PICK_KEY = "glimpse_embedded_pick"


@dataclass(frozen=True)
class Choice:
    device: str  # a resolved torch device string: "cuda", "mps" or "cpu"
    model_id: str


def _device_options() -> list[str]:
    options = ["auto", "cpu"]
    if torch.cuda.is_available():
        options.insert(1, "cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        options.insert(1, "mps")
    return options


def _memory_line(device: str) -> str:
    if device == "cuda":
        used = torch.cuda.memory_allocated() / 2**20
        total = torch.cuda.get_device_properties(0).total_memory / 2**20
        return f"{torch.cuda.get_device_name(0)} · {used:,.0f} / {total:,.0f} MiB in use"
    try:
        import psutil

        rss = psutil.Process().memory_info().rss / 2**20
        return f"{device.upper()} · process memory {rss:,.0f} MiB"
    except ImportError:
        return device.upper()


def current() -> Choice:
    """The sidebar's choice without drawing anything (for pages and tests)."""
    device = str(resolve_device(st.session_state.get(DEVICE_KEY, "auto")))
    return Choice(device=device, model_id=st.session_state.get(MODEL_KEY, DEFAULT_CLASSIFIER))


def sidebar() -> Choice:
    """Draw the device picker and the classifier picker; return the current choice."""
    with st.sidebar:
        st.selectbox("Device", _device_options(), key=DEVICE_KEY, help="auto: CUDA, then MPS, then CPU")
        choice = current()
        st.caption(_memory_line(choice.device))
        st.session_state.setdefault(MODEL_KEY, DEFAULT_CLASSIFIER)
        current_id = st.session_state[MODEL_KEY]
        # the picker follows the model in use (a hub model loaded below shows as no embedded pick)
        st.session_state[PICK_KEY] = current_id if current_id in EMBEDDED_CLASSIFIERS else None
        st.selectbox(
            "Classifier",
            list(EMBEDDED_CLASSIFIERS),
            key=PICK_KEY,
            placeholder="a hub model (loaded below)",
            on_change=_pick_embedded,
            help="The classifiers that ship with Glimpse and run offline: "
            + "; ".join(f"`{k}`: {v}" for k, v in EMBEDDED_CLASSIFIERS.items())
            + ". Any other (Hugging Face, torchvision, timm) loads by id below.",
        )
        if current_id not in EMBEDDED_CLASSIFIERS:  # the picker shows an embedded one; a hub id is named here
            st.markdown(f"**Classifier:** `{current_id}`")
        with st.expander("Use another classifier"):
            with st.form("model_form", border=False):
                typed = st.text_input(
                    "Model id",
                    placeholder="hf:google/vit-base-patch16-224 · torchvision:resnet50 · timm:resnet18",
                    help="Hugging Face ids need a network connection the first time; torchvision and timm "
                    "need the optional extras (requirements-extras.txt).",
                )
                load = st.form_submit_button("Load")
            if load and typed.strip():
                _try_load(typed.strip(), choice.device)
            st.caption(_extras_line())
            if st.session_state[MODEL_KEY] != DEFAULT_CLASSIFIER and st.button("Back to the embedded model"):
                st.session_state[MODEL_KEY] = DEFAULT_CLASSIFIER
                st.rerun()
        memory_panel()
    return current()


def memory_panel() -> None:
    """The models every session shares: memory per model against the budget, each model's line, Unload."""
    from components import loaders
    from models.memory import MiB

    ledger = loaders.ledger()
    entries = ledger.entries()
    with st.expander(f"Models in memory ({len(entries)})", icon=":material/memory:"):
        for pool, name in (("ram", "RAM"), ("vram", "GPU memory")):
            budget = ledger.budgets.get(pool, 0)
            if not budget:
                continue
            used = ledger.used(pool)
            st.progress(
                min(1.0, used / budget), text=f"{name}: {used / MiB:,.0f} of {budget / MiB:,.0f} MiB budget for models"
            )
        if not entries:
            st.caption("None loaded yet: a page loads its model on first use.")
        for e in entries:
            status = e.bundle.lock.status()
            line = "idle" if status.running is None else f"running {status.running.label}"
            if status.waiting:
                line += f", {len(status.waiting)} waiting"
            st.markdown(f"`{e.model_id}` · {e.device} · {e.bytes / MiB:,.1f} MiB  \n{line}")
            st.button(
                "Unload",
                icon=":material/eject:",
                type="tertiary",
                key=f"unload_{e.key}",
                on_click=loaders.unload,
                args=(e.model_id, e.device),
                help="Free its memory once the work on it is done; the next page that needs it loads it again.",
            )
        st.caption(
            "Shared by every session of this app. When a model would exceed the budget, the least recently "
            "used ones are unloaded first (budgets: GLIMPSE_RAM_BUDGET_MB, GLIMPSE_VRAM_BUDGET_MB)."
        )


def _pick_embedded() -> None:
    picked = st.session_state.get(PICK_KEY)
    if picked is not None:
        st.session_state[MODEL_KEY] = picked


def _extras_line() -> str:
    """Which optional model sources import here, so a user knows before typing an id."""
    from components import loaders

    parts = [
        f"{name}: {'available' if loaders.extra_status(name) is None else 'not installed'}"
        for name in ("torchvision", "timm")
    ]
    return " · ".join(parts)


def _try_load(model_id: str, device: str) -> None:
    from components import loaders

    try:
        loaders.classifier(model_id, device)
    except (ModelLoadError, ValueError) as err:
        st.error(f"Could not load {model_id!r}: {err}")
        return
    st.session_state[MODEL_KEY] = model_id
    st.rerun()
