"""The options several commands share, each defined once and worded one way; a command takes them as an
argparse parent: ``subparsers.add_parser(name, parents=[options(device="auto", model="classifier")])``.

Each keyword turns one option on and says what differs between commands (a default, what a seed seeds, what
a file holds); a fresh parent is built per call, so one command's defaults never leak into another's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

#: what ``--model`` names, and its default when none is given
MODELS = {
    "classifier": ("classifier id", "the embedded efficientnet-lite0"),
    "classifiers": ("classifier ids, comma-separated", None),
    "text-to-image": ("text-to-image model id: a local folder or a diffusers id", "the embedded shapes-t2i"),
}


def options(
    *,
    device: str | None = None,
    model: str | None = None,
    model_default: str | None = None,
    method: str | None = None,
    method_default: str | None = None,
    param: bool = False,
    seed: str | None = None,
    out: str | None = None,
    out_required: bool = False,
    json: str | None = None,
    csv: str | None = None,
) -> argparse.ArgumentParser:
    """A parent parser of the shared options asked for.

    device : the default of ``--device`` ("auto" or "cpu").
    model, model_default : what ``--model`` names (a key of :data:`MODELS`) and its default (None: the
        embedded one, which the command picks).
    method, method_default : ``--method``'s default in words ("the quick ones", "all", "required") and value.
    param : ``--param METHOD.NAME=VALUE``, repeatable.
    seed : what ``--seed`` seeds ("the methods' random draws").
    out, out_required : what ``--out`` writes ("a folder for leakage.csv, .json and .npz").
    json, csv : what ``--json`` (and ``--csv``, exclusive with it) print instead of a table.
    """
    p = argparse.ArgumentParser(add_help=False)
    if device is not None:
        p.add_argument(
            "--device", default=device, help=f"where to run: auto (cuda, then mps, then cpu), cuda, mps or cpu "
            f"(default {device})"
        )  # fmt: skip
    if model is not None:
        what, embedded = MODELS[model]
        shown = model_default or embedded
        p.add_argument("--model", default=model_default, help=f"{what} (default: {shown})")
    if method is not None:
        required = method == "required"
        help = "method name(s), comma-separated" + ("" if required else f" (default: {method})")
        p.add_argument("--method", "-m", required=required, default=method_default, help=help)
    if param:
        p.add_argument(
            "--param", "-p", action="append", default=[], metavar="METHOD.NAME=VALUE",
            help="override a method parameter, e.g. integrated_gradients.steps=64 (repeatable)",
        )  # fmt: skip
    if seed is not None:
        p.add_argument("--seed", type=int, default=0, help=f"seed of {seed} (default 0)")
    if out is not None:
        p.add_argument("--out", type=Path, required=out_required, default=None, help=f"where to write {out}")
    if json is not None or csv is not None:
        formats = p.add_mutually_exclusive_group()
        if json is not None:
            formats.add_argument("--json", action="store_true", help=f"print {json} as JSON instead of a table")
        if csv is not None:
            formats.add_argument("--csv", action="store_true", help=f"print {csv} as CSV instead of a table")
    return p
