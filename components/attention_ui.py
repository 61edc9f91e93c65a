"""The cross-attention page's Streamlit layer: cached pipeline and generation, widgets, views.

Generation runs once per (model, device, prompt, seed, steps, guidance) behind a form; the result is
kept in st.session_state and every display control (timestep range, resolution, layer, word, scrubber,
threshold) re-slices the stored trace inside an st.fragment, so moving a slider never regenerates.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image
from plotly.subplots import make_subplots

from components import jobs, loaders, session_results
from components.views import heatmap_figure
from glimpse.attention import LAYER_SETS, GenerationResult, generate_with_attention, word_maps, word_mass_over_time
from glimpse.attention.export import attention_npz_bytes, scrubber_gif
from glimpse.attention.metrics import DEFAULT_THRESHOLD, MODES, binarize, content_style_separation
from glimpse.display import colour_range, resize_image, resize_map, shown_values
from models.diffusion import EMBEDDED_T2I, DiffusionBundle
from models.registry import ModelLoadError

MODEL_KEY = "attention_model_id"
RESULT_KEY = "attention_result"
#: side of the grid the page aggregates on (the image side when smaller)
DISPLAY_GRID = 128
LAYER_SET_LABELS = {"daam": "DAAM (down + up blocks)", "all": "All layers (incl. UNet mid block)"}
EXAMPLES: tuple[str, ...] = (
    "a red circle to the left of a blue square",
    "a yellow triangle above a green circle",
    "a blue square below a red triangle",
    "a green circle",
)
#: words of the embedded vocabulary that name objects (content) and their colours (attributes)
_SHAPES = ("circle", "square", "triangle")
_COLOURS = ("red", "green", "blue", "yellow")
CITATION_DAAM = 'Tang et al., "What the DAAM: Interpreting Stable Diffusion Using Cross Attention", ACL 2023'
CITATION_COW = (
    '"The Cow of Rembrandt: Analyzing Artistic Prompt Interpretation in Text-to-Image Models", arXiv 2507.23313'
)


# ------------------------------------------------------------------------------------------- services
#: the shared pipeline loader (budgeted and released with the classifiers, components/loaders.py)
pipeline = loaders.pipeline


@dataclass(frozen=True)
class Request:
    model_id: str
    device: str
    prompt: str
    seed: int
    steps: int
    guidance: float
    heads: bool = False
    layers: str = "daam"  # one of glimpse.attention.LAYER_SETS

    @property
    def key(self) -> str:
        return (
            f"{self.model_id}|{self.device}|{self.prompt}|{self.seed}|{self.steps}|{self.guidance:g}|{self.heads}"
            f"|{self.layers}"
        )


@st.cache_data(max_entries=16, show_spinner=False)
def generation(
    model_id: str,
    device: str,
    prompt: str,
    seed: int,
    steps: int,
    guidance: float,
    heads: bool = False,
    layers: str = "daam",
) -> GenerationResult:
    """Generate once and record cross-attention at every resolution (heads averaged unless ``heads``).

    The progress bar is created inside the cached function so that a cache hit replays it (finished)
    instead of pointing at an element of another run.
    """
    bundle = pipeline(model_id, device)
    with jobs.bar("Denoising", unit="step") as progress:
        return generate_with_attention(
            bundle, prompt, seed=seed, steps=steps, guidance=guidance, heads=heads, layers=layers, progress=progress
        )


def run(request: Request) -> GenerationResult | None:
    """Run (or fetch) the generation and store it; on a user error show st.error and return None."""
    result = None
    try:
        with jobs.heavy("generation", cancel_message="Generation cancelled; the previous image is kept."):
            result = generation(
                request.model_id,
                request.device,
                request.prompt,
                request.seed,
                request.steps,
                request.guidance,
                request.heads,
                request.layers,
            )
    except ModelLoadError as err:
        session_results.pop(RESULT_KEY)  # maps of another prompt under the error would read as its answer
        st.error(f"Could not load the model: {err}")
        return None
    except ValueError as err:
        # A refused prompt keeps the previous result on screen, named, under the error: a typo must not
        # throw away a generation the user was reading.
        kept = stored()
        below = f"  \nThe maps below are still those of “{kept[0].prompt}”." if kept else ""
        advice = prompt_advice(request.model_id, request.device, str(err))
        st.error(f"**Cannot generate:** {err}.  \n{advice}{below}")
        return None
    if result is None:  # out of memory or unloaded: jobs.heavy said so
        return None
    session_results.put(RESULT_KEY, (request, result))
    return result


def stored() -> tuple[Request, GenerationResult] | None:
    """The last generated (request, result) of this session, or None."""
    return session_results.get(RESULT_KEY)


def prompt_advice(model_id: str, device: str, message: str = "") -> str:
    """What to do about a refused prompt: for the embedded model, its vocabulary (unless already named)."""
    try:
        bundle = pipeline(model_id, device)
    except ModelLoadError:
        return "Check the prompt and try again."
    example = f"Example: “{EXAMPLES[0]}”."
    if bundle.vocabulary:
        if "vocabulary" in message:
            return f"Rephrase with those words only. {example}"
        return (
            f"The embedded model knows only these words: {', '.join(bundle.vocabulary)} "
            f"(at most {bundle.max_tokens - 2} words). {example}"
        )
    return f"Type a non-empty prompt of at most {bundle.max_tokens} text-encoder tokens."


# -------------------------------------------------------------------------------------------- widgets
def model_picker(device: str) -> DiffusionBundle | None:
    """Embedded model by default, or a diffusers id; returns the loaded bundle or None (error shown)."""
    st.session_state.setdefault(MODEL_KEY, EMBEDDED_T2I)
    with st.expander(f"Model: `{st.session_state[MODEL_KEY]}`", expanded=False):
        st.caption(
            f"`{EMBEDDED_T2I}` is Glimpse's own 32×32 pixel-space model of coloured shapes: it runs offline on a "
            "CPU in about a second. A diffusers id (Stable Diffusion 1.x/2.x/XL, PixArt, SD3, Flux) needs a "
            "network connection (or the weights in the local Hugging Face cache) and, realistically, a GPU."
        )
        with st.form("attention_model_form", border=False):
            typed = st.text_input(
                "Diffusers model id", placeholder="stabilityai/stable-diffusion-2-1-base", key="attention_hub_id"
            )
            load = st.form_submit_button("Load")
        if load and typed.strip():
            try:
                pipeline(typed.strip(), device)
            except (ModelLoadError, ValueError) as err:
                st.error(f"Could not load {typed.strip()!r}: {err}")
            else:
                st.session_state[MODEL_KEY] = typed.strip()
                session_results.pop(RESULT_KEY)
                st.rerun()
        if st.session_state[MODEL_KEY] != EMBEDDED_T2I and st.button("Back to the embedded model"):
            st.session_state[MODEL_KEY] = EMBEDDED_T2I
            st.rerun()
    model_id = st.session_state[MODEL_KEY]
    try:
        return pipeline(model_id, device)
    except ModelLoadError as err:
        st.error(f"Could not load {model_id!r}: {err}")
        return None


def generation_form(bundle: DiffusionBundle, device: str) -> Request | None:
    """Prompt, seed, steps and guidance in a form; the Request when Generate was pressed, else None."""
    if bundle.vocabulary:
        vocab_help = (
            f"The embedded model knows only these words: {', '.join(bundle.vocabulary)} "
            f"(at most {bundle.max_tokens - 2} words)."
        )
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
        go_ = st.form_submit_button("Generate", type="primary")
    cost_caption(bundle, device, steps, guidance)
    if not go_:
        return None
    return Request(
        bundle.model_id, device, prompt.strip(), int(seed), int(steps), float(guidance), bool(heads), str(layers)
    )


def cost_caption(bundle: DiffusionBundle, device: str, steps: int, guidance: float) -> None:
    """What Generate will cost at the form's steps and guidance, from a denoising step timed on this machine."""
    from components.costs import denoising_step

    try:
        fixed, per = denoising_step(bundle.model_id, device, EXAMPLES[0], float(guidance))
    except (ValueError, RuntimeError):  # a model the probe prompt does not suit: no estimate, not an error
        return
    seconds = jobs.seconds_text(fixed + per * int(steps))
    st.caption(f"**Cost:** {int(steps)} denoising steps, {seconds} on this machine ({per * 1e3:.0f} ms a step).")


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


# ---------------------------------------------------------------------------------------------- views
def _pixels(image: np.ndarray, side: int = 256) -> np.ndarray:
    """Whole-number upscaling (nearest neighbour, :func:`glimpse.display.resize_image`) so a 32×32 generation
    stays crisp on screen."""
    h, w = image.shape[:2]
    k = max(1, side // max(h, w))
    return resize_image(image, (h * k, w * k))


@st.cache_data(max_entries=32, show_spinner=False)
def scrubber_gif_cached(frames: np.ndarray, image: np.ndarray, labels: tuple[str, ...]) -> bytes:
    """The scrubber's frames as a GIF (128 px); keyed by the frames' content."""
    return scrubber_gif(frames, image=image, labels=labels, size=128)


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def mask_overlay(image: np.ndarray, mask_a: np.ndarray, mask_b: np.ndarray) -> np.ndarray:
    """The image dimmed, with A-only pixels orange, B-only cyan and shared pixels white (masks at image size)."""
    if mask_a.shape != image.shape[:2]:
        mask_a, mask_b = (resize_map(m, image.shape[:2], resample="nearest") > 0.5 for m in (mask_a, mask_b))
    out = image.astype(np.float32) * 0.35 + 255 * 0.15
    out[mask_a & ~mask_b] = (255, 140, 0)
    out[mask_b & ~mask_a] = (0, 220, 255)
    out[mask_a & mask_b] = (255, 255, 255)
    return out.round().astype(np.uint8)


def strip_figure(
    maps: np.ndarray, labels: list[str], *, normalise: bool, height: int | None = None, label: str = "attention"
) -> go.Figure:
    """One small heatmap per word with one shared colour bar: each word min-max scaled to [0, 1], or the raw
    maps (non-negative attention) from 0 to the largest value of any word (:mod:`glimpse.display`); ``label``
    names the raw maps' colour bar."""
    n = len(maps)
    # square panels across a ~1100 px wide page: the height follows the number of words
    height = height or int(min(260, max(110, 1050 / max(n, 1))) + 30)
    mode = "minmax" if normalise else "positive"
    shown = np.stack([shown_values(np.asarray(m, dtype=np.float32), mode) for m in maps])
    cmin, cmax, _ = colour_range(shown, mode)  # one colour bar for every word
    fig = make_subplots(rows=1, cols=n, subplot_titles=labels, horizontal_spacing=0.012)
    for k in range(n):
        fig.add_trace(
            go.Heatmap(
                z=shown[k],
                coloraxis="coloraxis",
                hovertemplate=f"{labels[k]}<br>x=%{{x}}, y=%{{y}}<br>value=%{{z:.4g}}<extra></extra>",
            ),
            row=1,
            col=k + 1,
        )
        fig.update_yaxes(scaleanchor=f"x{k + 1 if k else ''}", row=1, col=k + 1)
    fig.update_yaxes(autorange="reversed", visible=False)
    fig.update_xaxes(visible=False)
    fig.update_annotations(font_size=12)
    fig.update_layout(
        coloraxis=dict(
            colorscale="Viridis",
            cmin=cmin,
            cmax=cmax,
            colorbar=dict(title="min-max" if normalise else label, thickness=10, len=0.9),
        ),
        height=height,
        margin=dict(l=0, r=0, t=24, b=0),
    )
    return fig


def summed_label(lo: int, hi: int) -> str:
    """The colour-bar label of a map summed over steps ``lo..hi`` (0-based, inclusive), as DAAM sums them."""
    n = hi - lo + 1
    return f"attention at step {lo + 1}" if n == 1 else f"attention, summed over {n} steps ({lo + 1}–{hi + 1})"


def overlay_figure(values: np.ndarray, image: np.ndarray, *, title: str, label: str, height: int) -> go.Figure:
    """A word's attention over the image, from 0 (transparent: the image shows through) to the map's largest
    value; ``label`` names the colour bar (summed over steps, or one step: their scales differ tenfold)."""
    top = float(np.nanmax(values)) if np.size(values) else 0.0
    return heatmap_figure(
        values,
        image=image,
        title=title,
        zmin=0.0,
        zmax=top if top > 0 else 1.0,
        opacity=0.85,
        fade=True,
        colorbar_title=label,
        colorbar_side="right",
        height=height,
    )


def mass_figure(mass: np.ndarray, labels: list[str], timesteps: np.ndarray, span: tuple[int, int]) -> go.Figure:
    """Per-word attention mass over the generation; the selected timestep range is shaded."""
    steps = np.arange(1, mass.shape[1] + 1)
    fig = go.Figure()
    for k, label in enumerate(labels):
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=mass[k],
                mode="lines+markers",
                name=label,
                customdata=timesteps,
                hovertemplate=f"{label}<br>step %{{x}} (t=%{{customdata}})<br>mass=%{{y:.4g}}<extra></extra>",
            )
        )
    fig.add_vrect(x0=span[0] + 0.5, x1=span[1] + 1.5, fillcolor="grey", opacity=0.12, line_width=0)
    fig.update_layout(
        height=300,
        margin=dict(l=0, r=0, t=10, b=0),
        xaxis_title="denoising step (noisy → clean)",
        yaxis_title="attention mass",
        legend=dict(orientation="h", y=-0.25),
    )
    return fig


def iou_matrix_figure(matrix: np.ndarray, labels: list[str]) -> go.Figure:
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=labels,
            y=labels,
            zmin=0.0,
            zmax=1.0,
            colorscale="Blues",
            colorbar=dict(title="IoU", thickness=10),
            hovertemplate="%{y} × %{x}<br>IoU=%{z:.3f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=320, margin=dict(l=0, r=0, t=10, b=0))
    return fig


@st.fragment
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


def _result_key(result: GenerationResult) -> tuple:
    """What determines a generation (it is deterministic): the key its re-sliced views are cached on."""
    t = result.trace
    return (t.model_id, t.prompt, t.seed, t.steps, t.guidance, t.heads, getattr(t, "layer_set", None))


_BY_RESULT = {GenerationResult: _result_key}


@st.cache_data(max_entries=64, show_spinner=False, hash_funcs=_BY_RESULT)
def sliced_maps(result: GenerationResult, sl: Slice) -> np.ndarray:
    """Every word's map over the slice's steps, (words, size, size)."""
    return word_maps(result.trace, size=sl.size, timesteps=slice(sl.lo, sl.hi + 1), **sl.select())


@st.cache_data(max_entries=16, show_spinner=False, hash_funcs=_BY_RESULT)
def step_maps(result: GenerationResult, sl: Slice) -> np.ndarray:
    """Every word's map at each single step, (steps, words, size, size): the scrubber and the GIF re-slice it."""
    trace = result.trace
    return np.stack(
        [word_maps(trace, size=sl.size, timesteps=slice(i, i + 1), **sl.select()) for i in range(len(trace.timesteps))]
    )


@st.cache_data(max_entries=64, show_spinner=False, hash_funcs=_BY_RESULT)
def mass_over_time(result: GenerationResult, sl: Slice) -> np.ndarray:
    return word_mass_over_time(result.trace, **sl.select())


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


def overlay_row(
    result: GenerationResult, maps: np.ndarray, frames: np.ndarray, w: int, label: str, sl: Slice, sfx: str
):
    """The image with the GIF, the word's overlay over the slice, and the scrubber over single steps."""
    trace = result.trace
    T = len(trace.timesteps)
    o1, o2, o3 = st.columns(3)
    with o1:
        st.image(_pixels(result.image), caption=f"“{trace.prompt}” · seed {trace.seed} · {trace.steps} steps")
        gif = scrubber_gif_cached(
            frames, result.image, tuple(f"{i + 1}: t={int(t)}" for i, t in enumerate(trace.timesteps))
        )
        with st.expander("Animation over timesteps (GIF)"):
            st.image(gif, caption=f"“{label}”, one frame per denoising step, each frame min-max scaled")
    with o2:
        title = f"“{label}”, steps {sl.lo + 1}–{sl.hi + 1}"
        fig = overlay_figure(maps[w], result.image, title=title, label=summed_label(sl.lo, sl.hi), height=330)
        st.plotly_chart(fig, key="attention_overlay")
    with o3:
        help_ = "The selected word's map at one step."
        i = st.slider("Scrub timesteps", 1, T, T, key=f"attention_scrub_{sfx}", help=help_) if T > 1 else 1
        title = f"“{label}” at step {i} (t={int(trace.timesteps[i - 1])})"
        fig = overlay_figure(frames[i - 1], result.image, title=title, label=f"attention at step {i}", height=260)
        st.plotly_chart(fig, key="attention_scrub_fig")
    return gif


def downloads(result: GenerationResult, maps, mass, frames, gif: bytes, word: str, sl: Slice) -> None:
    st.subheader("Downloads")
    trace = result.trace
    d1, d2, d3 = st.columns(3)
    stem = "_".join(trace.prompt.split())[:60] or "attention"
    d1.download_button(
        "Image (PNG)", png_bytes(result.image), f"{stem}.png", "image/png", key="attention_dl_png", on_click="ignore"
    )
    d2.download_button(
        "Maps (NPZ)",
        # built only when clicked: the NPZ is the largest download and most reruns never need it
        lambda: attention_npz_bytes(trace, maps, image=result.image, slices=sl.meta(), mass=mass, frames=frames),
        f"{stem}_attention.npz",
        "application/octet-stream",
        key="attention_dl_npz",
        on_click="ignore",
    )
    d3.download_button(
        "Scrubber (GIF)", gif, f"{stem}_{word}.gif", "image/gif", key="attention_dl_gif", on_click="ignore"
    )


def results_view() -> None:
    """Everything shown after Generate; each control re-slices the stored trace (cached; no regeneration)."""
    found = stored()
    if found is None:
        return
    request, result = found
    words = tuple(result.trace.words)
    labels = word_labels(words)
    # widget keys carry the result's id: a new result (other T, words, layers) starts with fresh controls
    sfx = hashlib.sha1(request.key.encode()).hexdigest()[:8]

    st.subheader("What each word attends to")
    sl = slice_controls(result, sfx)
    if sl is None:
        return
    maps = sliced_maps(result, sl)
    normalise = st.toggle("Normalise each word (min-max)", value=True, key="attention_norm")
    n = sl.hi - sl.lo + 1  # (a one-line label: the strip's colour bar is ~100 px tall)
    short = f"step {sl.lo + 1}" if n == 1 else f"Σ {n} steps"
    strip = strip_figure(maps, labels, normalise=normalise, label=short)
    st.plotly_chart(strip, key="attention_strip")
    w = st.selectbox(
        "Word to overlay", range(len(words)), index=_default_word(words), format_func=lambda i: labels[i],
        key=f"attention_word_{sfx}",
    )  # fmt: skip
    frames = step_maps(result, sl)[:, w]
    gif = overlay_row(result, maps, frames, w, labels[w], sl, sfx)

    st.subheader("Attention mass over time")
    mass = mass_over_time(result, sl)
    st.plotly_chart(mass_figure(mass, labels, result.trace.timesteps, (sl.lo, sl.hi)), key="attention_mass")
    separation_panel(maps, words, labels, sfx, result.image)
    downloads(result, maps, mass, frames, gif, words[w], sl)


def separation_panel(maps: np.ndarray, words: tuple[str, ...], labels: list[str], sfx: str, image: np.ndarray) -> None:
    """Content vs style ("The Cow of Rembrandt"): IoU of two words' masks against the other pairs."""
    st.subheader("Content vs style")
    st.caption(
        "Binarise each word map at a threshold and compare the overlap (IoU) of two words with the mean "
        "overlap of all other word pairs of the prompt: Δ = baseline − IoU(A, B). Δ > 0: the two words are "
        f"attended to in more separate regions than usual. After {CITATION_COW}; maps as in {CITATION_DAAM}."
    )
    if len(words) < 3:
        st.info("The baseline needs another word pair: use a prompt of at least 3 words.")
        return
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
    try:
        sep = content_style_separation(maps, words, a, b, threshold=t, mode=mode)
    except ValueError as err:
        st.error(f"{err}.")
        return
    m1, m2, m3 = st.columns(3)
    m1.metric(f"IoU({labels[a]}, {labels[b]})", f"{sep.iou:.3f}")
    m2.metric(
        "Baseline IoU (other pairs)",
        f"{sep.baseline_mean:.3f} ± {sep.baseline_std:.3f}",
        help=f"{sep.baseline_pairs} pairs",
    )
    m3.metric("Δ = baseline − IoU", f"{sep.delta:+.3f}")
    k1, k2 = st.columns([1, 2])
    with k1:
        st.image(
            _pixels(mask_overlay(image, binarize(maps[a], t, mode=mode), binarize(maps[b], t, mode=mode))),
            caption=f"Masks at t = {t:.2f}: {labels[a]} only (orange), {labels[b]} only (cyan), both (white)",
        )
    with k2:
        st.plotly_chart(iou_matrix_figure(sep.pair_iou, labels), key="cs_matrix")
