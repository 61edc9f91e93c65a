"""The Cross-attention lens's widgets: the model, the generation form, and the display controls that re-slice a
stored trace (timestep range, resolutions, layer, head, word, scrubber, content-vs-style pair). Each returns a
frozen request or a plain value; nothing here computes."""

from __future__ import annotations

from dataclasses import dataclass, fields

import streamlit as st

from components import jobs
from components.attention import EXAMPLES, MODEL_KEY, services, state
from components.sidebar import current
from glimpse.attention import LAYER_SETS, GenerationResult
from glimpse.attention.concept import applies as concepts_apply
from glimpse.attention.metrics import DEFAULT_THRESHOLD, MODES
from models.diffusion import EMBEDDED_MMDIT, EMBEDDED_T2I, DiffusionBundle
from models.registry import ModelLoadError

#: side of the grid the page aggregates on (the image side when smaller)
DISPLAY_GRID = 128
LAYER_SET_LABELS = {"daam": "DAAM (down + up blocks)", "all": "All layers (incl. UNet mid block)"}
#: words of the embedded vocabulary that name objects (content) and their colours (attributes)
_SHAPES = ("circle", "square", "triangle")
_COLOURS = ("red", "green", "blue", "yellow")


@dataclass(frozen=True)
class GenerationRequest:
    """What Generate was pressed with: the arguments of :func:`components.attention.services.generation`."""

    model_id: str
    device: str
    prompt: str
    seed: int
    steps: int
    guidance: float
    heads: bool = False
    layers: str = "daam"  # one of glimpse.attention.LAYER_SETS
    concept_attention: bool = False  # also ConceptAttention's maps (SD3 / Flux)
    concepts: tuple[str, ...] = ()  # its concepts; empty: the prompt's content words

    def arguments(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def key(self) -> str:
        return "|".join(f"{v:g}" if isinstance(v, float) else str(v) for v in self.arguments().values())


@dataclass(frozen=True)
class Slice:
    """Which part of a trace the views show: steps ``lo..hi`` (inclusive), resolutions, layers, heads, grid."""

    lo: int
    hi: int
    resolutions: tuple[int, ...]
    layers: tuple[str, ...] | None  # None: all layers at the chosen resolutions
    heads: tuple[int, ...] | None  # None: all heads
    size: int  # side of the grid the maps are aggregated on

    def select(self) -> dict:
        return dict(
            layers=None if self.layers is None else list(self.layers),
            resolutions=list(self.resolutions),
            heads=None if self.heads is None else list(self.heads),
        )

    def meta(self) -> dict:
        """How the downloaded maps were sliced (the NPZ's ``slices``)."""
        return {
            "timesteps": [self.lo, self.hi + 1],
            "layers": list(self.layers) if self.layers else "all",
            "resolutions": list(self.resolutions),
            "heads": list(self.heads) if self.heads else "all",
            "size": self.size,
        }


@dataclass(frozen=True)
class SeparationRequest:
    """The content-vs-style controls: words ``a`` and ``b`` (indices), the threshold and its mode."""

    a: int
    b: int
    threshold: float
    mode: str


# ---------------------------------------------------------------------------------------------- model
def model_or_stop() -> tuple[DiffusionBundle, str]:
    """The sidebar's device and the picked pipeline; the page stops (the error shown) when it cannot load."""
    device = current().device
    bundle = model_picker(device)
    if bundle is None:
        st.stop()
    return bundle, device


def model_picker(device: str) -> DiffusionBundle | None:
    """Embedded model by default, or a diffusers id; returns the loaded bundle or None (error shown)."""
    st.session_state.setdefault(MODEL_KEY, EMBEDDED_T2I)
    with st.expander(f"Model: `{st.session_state[MODEL_KEY]}`", expanded=False):
        st.caption(
            f"`{EMBEDDED_T2I}` is Glimpse's own 32×32 pixel-space model of coloured shapes: it runs offline on a "
            f"CPU in about a second; `{EMBEDDED_MMDIT}` draws the same scenes with an SD3-style transformer (joint "
            "attention, flow matching). A diffusers id (Stable Diffusion 1.x/2.x/XL, PixArt, SD3, Flux) needs a "
            "network connection (or the weights in the local Hugging Face cache) and, realistically, a GPU."
        )
        with st.form("attention_model_form", border=False):
            typed = st.text_input(
                "Diffusers model id", placeholder="stabilityai/stable-diffusion-2-1-base", key="attention_hub_id"
            )
            load = st.form_submit_button("Load")
        if load and typed.strip():
            try:
                services.pipeline(typed.strip(), device)
            except (ModelLoadError, ValueError) as err:
                st.error(f"Could not load {typed.strip()!r}: {err}")
            else:
                st.session_state[MODEL_KEY] = typed.strip()
                state.forget()
                st.rerun()
        if st.session_state[MODEL_KEY] != EMBEDDED_T2I and st.button("Back to the embedded model"):
            st.session_state[MODEL_KEY] = EMBEDDED_T2I
            st.rerun()
        if st.session_state[MODEL_KEY] != EMBEDDED_MMDIT and st.button(f"The embedded MMDiT (`{EMBEDDED_MMDIT}`)"):
            st.session_state[MODEL_KEY] = EMBEDDED_MMDIT
            state.forget()
            st.rerun()
    model_id = st.session_state[MODEL_KEY]
    try:
        return services.pipeline(model_id, device)
    except ModelLoadError as err:
        st.error(f"Could not load {model_id!r}: {err}")
        return None


# ----------------------------------------------------------------------------------------- generation
def generation_form(bundle: DiffusionBundle, device: str) -> GenerationRequest | None:
    """Prompt, seed, steps and guidance in a form; the request when Generate was pressed, else None."""
    if bundle.vocabulary:
        vocab_help = state.vocabulary_text(bundle)
        st.caption(vocab_help + " Examples: " + " · ".join(f"“{e}”" for e in EXAMPLES))
    else:
        vocab_help = f"At most {bundle.max_tokens} text-encoder tokens."
    with st.form("attention_form"):
        prompt = st.text_input("Prompt", value=EXAMPLES[0], help=vocab_help, key="attention_prompt")
        c1, c2, c3 = st.columns(3)
        seed = c1.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key="attention_seed")
        steps = c2.slider("Steps", 1, 100, int(bundle.default_steps), key="attention_steps")
        guidance = c3.slider(
            "Guidance", 1.0, 15.0, float(bundle.default_guidance), step=0.5, key="attention_guidance",
            help="Classifier-free guidance scale; 1 turns guidance off.",
        )  # fmt: skip
        h1, h2 = st.columns(2)
        heads = h1.checkbox(
            "Keep every attention head",
            key="attention_heads",
            help="Records each head separately (memory × number of heads) so the maps can be sliced by head.",
        )
        layers = h2.selectbox(
            "Layers",
            LAYER_SETS,
            format_func=LAYER_SET_LABELS.get,
            key="attention_layers",
            help="DAAM (default) records what the DAAM library records: for UNet models the down and up blocks "
            "(Stable Diffusion: without the 8×8 maps), aggregated on its grid, so the maps equal DAAM's. "
            "'All layers' adds the UNet's mid block and every resolution. Transformers record every layer.",
        )
        concept_on, concepts = concept_controls(bundle)
        go_ = st.form_submit_button("Generate", type="primary")
    cost_caption(bundle, device, steps, guidance)
    if not go_:
        return None
    return GenerationRequest(
        bundle.model_id, device, prompt.strip(), int(seed), int(steps), float(guidance), bool(heads), str(layers),
        concept_on, concepts,
    )  # fmt: skip


def concept_controls(bundle: DiffusionBundle) -> tuple[bool, tuple[str, ...]]:
    """ConceptAttention on or off and its concepts, for joint-attention (SD3 / Flux) pipelines; for the others a
    caption says why it is not offered."""
    reason = concepts_apply(bundle.kind)
    if reason is not None:
        st.caption(f"ConceptAttention is not offered for this model: {reason}.")
        return False, ()
    c1, c2 = st.columns([1, 2])
    on = c1.checkbox(
        "ConceptAttention",
        key="attention_concepts_on",
        help="Helbling et al., ICML 2025: concept tokens pass through every joint block beside the prompt (the "
        "image does not change); each concept's map is read in the attention output space, softmax over concepts.",
    )
    typed = c2.text_input(
        "Concepts (comma-separated)", key="attention_concepts", placeholder="empty: the prompt's content words"
    )
    return bool(on), tuple(c.strip() for c in typed.split(",") if c.strip())


def cost_caption(bundle: DiffusionBundle, device: str, steps: int, guidance: float) -> None:
    """What Generate will cost at the form's steps and guidance, from a denoising step timed on this machine."""
    from components.costs import denoising_step

    try:
        fixed, per = denoising_step(bundle.model_id, device, EXAMPLES[0], float(guidance))
    except (ValueError, RuntimeError):  # a model the probe prompt does not suit: no estimate, not an error
        return
    seconds = jobs.seconds_text(fixed + per * int(steps))
    st.caption(f"**Cost:** {int(steps)} denoising steps, {seconds} on this machine ({per * 1e3:.0f} ms a step).")


# ------------------------------------------------------------------------------------ display controls
def word_labels(words: tuple[str, ...]) -> list[str]:
    """Word labels, numbered where a word occurs more than once (“a (1)”, “a (7)”)."""
    return [f"{w} ({i + 1})" if words.count(w) > 1 else w for i, w in enumerate(words)]


def _default_word(words: tuple[str, ...]) -> int:
    """The word shown first: the first shape word, else the last word (any prompt of one word or more)."""
    return next((i for i, w in enumerate(words) if w in _SHAPES), len(words) - 1)


def _default_pair(words: tuple[str, ...]) -> tuple[int, int]:
    """Content and style words for a prompt of at least two words: a shape word and a colour word, else the
    default word and the last other word."""
    if len(words) < 2:
        raise ValueError(f"words: a pair needs two words, got {len(words)}")
    shape = _default_word(words)
    colour = next((i for i, w in enumerate(words) if w in _COLOURS and i != shape), None)
    if colour is None:
        colour = next(i for i in range(len(words) - 1, -1, -1) if i != shape)
    return shape, colour


def slice_controls(result: GenerationResult, sfx: str) -> Slice | None:
    """Timestep range, resolutions, layer and head; None (with a warning) when no resolution is picked."""
    trace = result.trace
    T = len(trace.timesteps)
    c1, c2, c3 = st.columns([2, 1, 1])
    if T > 1:
        lo, hi = c1.select_slider(
            "Timestep range",
            options=list(range(T)),
            value=(0, T - 1),
            format_func=lambda i: f"{i + 1} (t={int(trace.timesteps[i])})",
            key=f"attention_span_{sfx}",
            help="Denoising steps whose attention is summed (DAAM sums over all of them).",
        )
    else:
        lo, hi = 0, 0
        c1.caption(f"One denoising step (t={int(trace.timesteps[0])}): no timestep range to choose.")
    resolutions = list(trace.resolutions())
    chosen_res = c2.multiselect(
        "Resolutions", resolutions, default=resolutions, format_func=lambda r: f"{r}×{r}", key=f"attention_res_{sfx}"
    )
    if not chosen_res:
        st.warning("Pick at least one resolution.")
        return None
    layers_at = [name for name in trace.layers if trace.resolution_of(name) in chosen_res]
    layer = c3.selectbox("Layer", ["all layers", *layers_at], key=f"attention_layer_{sfx}")
    layers = None if layer == "all layers" else (layer,)
    heads = None
    if trace.heads:
        n_heads = min(int(trace.layer_maps[trace.layers.index(name)].shape[1]) for name in (layers or layers_at))
        head = st.selectbox("Head", ["all heads", *range(n_heads)], key=f"attention_head_{sfx}")
        heads = None if head == "all heads" else (int(head),)
    # big hub images: aggregate on a display grid (DAAM itself aggregates at 64×64), not at 512+ pixels
    size = min(int(result.image.shape[0]), DISPLAY_GRID)
    return Slice(int(lo), int(hi), tuple(int(r) for r in chosen_res), layers, heads, size)


def normalise_toggle() -> bool:
    return st.toggle("Normalise each word (min-max)", value=True, key="attention_norm")


def word_picker(words: tuple[str, ...], labels: list[str], sfx: str) -> int:
    """The word whose map is overlaid and scrubbed (an index into ``words``)."""
    return st.selectbox(
        "Word to overlay", range(len(words)), index=_default_word(words), format_func=lambda i: labels[i],
        key=f"attention_word_{sfx}",
    )  # fmt: skip


def scrub_step(steps: int, sfx: str) -> int:
    """The single step (1-based) the scrubber shows; 1 when there is only one."""
    if steps <= 1:
        return 1
    return st.slider("Scrub timesteps", 1, steps, steps, key=f"attention_scrub_{sfx}",
                     help="The selected word's map at one step.")  # fmt: skip


def separation_controls(words: tuple[str, ...], labels: list[str], sfx: str) -> SeparationRequest:
    """Word A (content), word B (style), the threshold and its mode, for a prompt of at least two words."""
    da, db = _default_pair(words)
    c1, c2, c3, c4 = st.columns(4)
    a = c1.selectbox(
        "Word A (content)", range(len(words)), index=da, format_func=lambda i: labels[i], key=f"cs_a_{sfx}"
    )
    b = c2.selectbox("Word B (style)", range(len(words)), index=db, format_func=lambda i: labels[i], key=f"cs_b_{sfx}")
    t = c3.slider("Threshold", 0.05, 0.95, DEFAULT_THRESHOLD, 0.05, key="cs_threshold")
    mode = c4.radio(
        "Mode", MODES, horizontal=True, key="cs_mode",
        help="absolute: keep pixels above t on the min-max normalised map (DAAM); quantile: above the t-quantile.",
    )  # fmt: skip
    return SeparationRequest(int(a), int(b), float(t), str(mode))
