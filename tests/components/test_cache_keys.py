"""One convention for cached work on an image: the service takes the image and is keyed by its digest.

No cached service takes an underscore (unhashed) argument, which serves a stale result when the key misses
what it stands for, and none reads st.session_state, which a cache hit would not replay.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cached_functions():
    for path in sorted((ROOT / "components").rglob("*.py")):  # the lens packages too
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef):
                continue
            for dec in node.decorator_list:
                call = dec if isinstance(dec, ast.Call) else None
                func = call.func if call else dec
                if isinstance(func, ast.Attribute) and func.attr in ("cache_data", "cache_resource"):
                    kwargs = {k.arg: k.value for k in call.keywords} if call else {}
                    yield path.relative_to(ROOT).as_posix(), node, func.attr, kwargs


def test_there_are_cached_services():
    names = {node.name for _, node, _, _ in cached_functions()}
    assert {"predictions", "saliency_maps", "single", "maps", "compare", "score_upload"} <= names


def test_no_cached_service_takes_an_unhashed_argument_or_reads_session_state():
    bad = []
    for file, node, _, _ in cached_functions():
        args = [a.arg for a in node.args.args + node.args.kwonlyargs]
        bad += [f"{file}:{node.name}({a})" for a in args if a.startswith("_")]
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute) and sub.attr == "session_state":
                bad.append(f"{file}:{node.name} reads st.session_state")
    assert not bad, bad


def test_services_that_take_an_image_are_keyed_by_its_digest():
    missing = []
    for file, node, _, kwargs in cached_functions():
        annotations = [ast.unparse(a.annotation) for a in node.args.args if a.annotation is not None]
        takes_image = any("ImageChoice" in a or a == "Upload" for a in annotations)
        if takes_image and "hash_funcs" not in kwargs:
            missing.append(f"{file}:{node.name}")
    assert not missing, f"cached on an image without hash_funcs=BY_DIGEST: {missing}"


def test_every_image_is_keyed_one_way():
    """A picked image, an upload and a pool are keyed by ``image_input.digest`` (sha1, 16 hex digits): of the
    pixels for a picked image, of the file's bytes for an upload."""
    import hashlib

    import numpy as np

    from components.image_input import digest, image_choice
    from components.uploads import BY_UPLOAD, Upload

    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    choice = image_choice("a.png", pixels)
    assert choice.digest == digest(pixels) == hashlib.sha1(pixels.tobytes()).hexdigest()[:16]
    assert digest(pixels[:, ::-1]) == hashlib.sha1(pixels[:, ::-1].tobytes()).hexdigest()[:16]  # C order of a view
    upload = Upload("a.png", b"\x89PNG not really")
    assert upload.digest == digest(upload.data) and BY_UPLOAD[Upload](upload) == upload.digest
    assert BY_UPLOAD[type(choice)](choice) == choice.digest
