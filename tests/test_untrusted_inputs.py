"""Property-based tests (hypothesis) over what a user uploads or types: every input gives a result or a one-line
error of the documented kind (a ``ValueError``, which every page and the command line turn into a message),
never a traceback.

Bounded time: the ``ci`` profile (tests/conftest.py) runs a fixed, derandomised set of examples per property;
``HYPOTHESIS_PROFILE=thorough`` runs many more with fresh randomness.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from glimpse.complexity.fit import cross_validate, prepare
from glimpse.diffusion_classifier.negatives import expand_template, hard_negatives, parse
from glimpse.evaluation.masks import load_mask
from glimpse.export import MapEntry, RunRecord, bundle_bytes, read_bundle
from glimpse.images import load_image


def one_line_error(call, *args, **kwargs):
    """The result of ``call``, or None after checking its error is a ValueError with a one-line message."""
    try:
        return call(*args, **kwargs)
    except ValueError as err:
        message = str(err)
        assert message and "\n" not in message and len(message) < 600, repr(message)
        return None


# ------------------------------------------------------------------------------------------- images
MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F")
FORMATS = {"PNG": MODES[:6] + ("I;16",), "JPEG": ("L", "RGB", "CMYK"), "GIF": ("L", "P"), "BMP": ("1", "L", "P", "RGB"),
           "TIFF": MODES, "WEBP": ("RGB", "RGBA")}  # fmt: skip


@st.composite
def encoded_images(draw):
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    mode = draw(st.sampled_from(FORMATS[fmt]))
    w, h = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    seed = draw(st.integers(0, 2**16))
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8)
    img = Image.fromarray(pixels, "RGBA").convert("RGB" if mode in ("I;16", "I", "F") else mode)
    if mode in ("I;16", "I", "F"):
        img = (
            img.convert("L").convert(mode)
            if mode != "I;16"
            else Image.fromarray(pixels[..., 0].astype(np.uint16) * 257)
        )
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


@st.composite
def damaged(draw, valid):
    """A valid encoding with some bytes changed, cut short, or junk appended."""
    data = bytearray(draw(valid))
    kind = draw(st.sampled_from(("flip", "truncate", "append")))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif kind == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    else:
        data += draw(st.binary(min_size=1, max_size=64))
    return bytes(data)


any_image_bytes = st.one_of(st.binary(max_size=256), encoded_images(), damaged(encoded_images()))


@given(any_image_bytes)
def test_image_bytes_give_an_rgb_image_or_a_one_line_error(data):
    image = one_line_error(load_image, data)
    if image is not None:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.size > 0


@given(encoded_images())
def test_every_encoded_mode_decodes(data):
    image = load_image(data)
    assert image.dtype == np.uint8 and image.shape[2] == 3


@given(any_image_bytes, st.tuples(st.integers(1, 30), st.integers(1, 30)))
def test_mask_bytes_give_a_binary_mask_or_a_one_line_error(data, shape):
    mask = one_line_error(load_mask, data, shape)
    if mask is not None:
        assert mask.dtype == bool and mask.shape == shape and mask.any()


# ------------------------------------------------------------------------------------------- prompts
words = st.sampled_from(("a", "red", "green", "blue", "yellow", "circle", "square", "triangle", "left", "of", "above",
                         "below", "right", "and", "two", "big", "the", "Red", "CIRCLE,", "é", "🙂", "", " ", "\n", "\t"))  # fmt: skip
prompts = st.one_of(st.text(max_size=80), st.lists(words, max_size=20).map(" ".join))


@pytest.fixture(scope="module")
def shapes_bundle():
    from models.diffusion import load_pipeline

    return load_pipeline("shapes-t2i", device="cpu")


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompts)
def test_prompts_of_the_embedded_model_give_tokens_or_a_one_line_error(shapes_bundle, prompt):
    from glimpse.attention.generate import prompt_tokens

    tokens = one_line_error(prompt_tokens, shapes_bundle, prompt)
    if tokens is not None:
        assert tokens.words and len(tokens.word_tokens) == len(tokens.words)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(prompts, max_size=5))
def test_candidate_prompts_of_the_diffusion_classifier_are_checked_before_any_work(shapes_bundle, candidates):
    from glimpse.diffusion_classifier import adapter_for, classify

    model = adapter_for(shapes_bundle.pipe, shapes_bundle.model_id)
    checked = one_line_error(lambda: [model.check_prompt(p) for p in candidates])
    assume(checked is None or len(set(checked)) < 2)  # valid, distinct candidates would start the (slow) scoring
    image = np.zeros((32, 32, 3), np.uint8)
    assert one_line_error(classify, model, image, candidates, samples=1) is None


@given(prompts)
def test_hard_negatives_and_templates_never_raise_anything_else(prompt):
    parsed = parse(prompt)
    negatives = one_line_error(hard_negatives, prompt)
    if parsed is None:
        assert not negatives
    else:
        assert negatives is not None and all(text != prompt for _, text in negatives)
    expanded = one_line_error(expand_template, prompt)
    if expanded is not None:
        assert all(isinstance(p, str) and "{" not in p for p in expanded)


# ------------------------------------------------------------------------------------------- tables
columns = st.sampled_from(("complexity", "msg", "muc", "num_seg_64points", "num_classes", "gemini_surprise_score",
                           "image", "x", "", "complexity,"))  # fmt: skip
cells = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), st.text(max_size=6), st.just(""))


@st.composite
def csv_tables(draw):
    header = draw(st.lists(columns, min_size=1, max_size=6))
    rows = draw(st.lists(st.lists(cells, min_size=len(header), max_size=len(header)), max_size=12))
    lines = [",".join(header)] + [",".join(str(c) for c in row) for row in rows]
    return "\n".join(lines).encode(draw(st.sampled_from(("utf-8", "utf-16", "latin-1"))), errors="replace")


@settings(deadline=None)
@given(st.one_of(csv_tables(), st.binary(max_size=200)))
def test_csv_tables_give_a_fit_or_a_one_line_error(data):
    table = one_line_error(prepare, data, name="upload.csv")
    if table is not None:
        scores = one_line_error(cross_validate, table, {"msg": "complexity ~ msg"}, dataset="upload.csv")
        if scores is not None:
            assert len(scores) == 1


# ------------------------------------------------------------------------------------------- bundles
@pytest.fixture(scope="module")
def bundle() -> bytes:
    rng = np.random.default_rng(0)
    run = RunRecord(
        image=rng.integers(0, 256, (12, 10, 3), dtype=np.uint8),
        image_name="x",
        maps=(MapEntry("complexity: MSG s=2", "complexity", rng.random((6, 5)), {"scale": 2}),),
        params={"k": 20.0},
        models={"classifier": "efficientnet-lite0"},
        seeds={"saliency": 0},
        prompt=None,
        tables={"agreement": ({"map_a": "x", "spearman": 0.25},)},
    )
    return bundle_bytes(run)


@st.composite
def rezipped(draw, original: bytes):
    """The bundle's members, some replaced by junk, renamed or dropped, zipped again."""
    with zipfile.ZipFile(io.BytesIO(original)) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            action = draw(st.sampled_from(("keep", "keep", "junk", "drop", "rename", "cut")))
            if action == "drop":
                continue
            if action == "junk":
                data = draw(st.binary(max_size=64))
            elif action == "cut":
                data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
            if action == "rename":
                name = draw(st.sampled_from(("../evil", "/abs", "a\\b", "maps.npy", name + ".pkl", "x" * 300)))
            zf.writestr(name, data)
    return out.getvalue()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bundles_give_a_run_or_a_one_line_error(bundle, data):
    blob = data.draw(
        st.one_of(st.binary(max_size=300), damaged(st.just(bundle)), rezipped(bundle)),
        label="bundle bytes",
    )
    record = one_line_error(read_bundle, blob)
    if record is not None:
        assert record.image.dtype == np.uint8 and record.maps
