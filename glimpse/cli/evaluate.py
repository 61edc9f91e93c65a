"""``python -m glimpse evaluate``: score saliency methods against known truth.

    python -m glimpse evaluate blockdigits [--model ID,ID] [--method M,M] [--param METHOD.NAME=VALUE ...]
        [--images N] [--seed S] [--json] [--out DIR]
    python -m glimpse evaluate class-sensitivity [IMAGE ...] [--model ID] [--method M,M] [--json] [--out DIR]
    python -m glimpse evaluate masks IMAGE ... --masks MASK ... [--model ID] [--method M,M] [--k 10] [--json]
        [--out DIR]
    python -m glimpse evaluate shapes [--method M,M] [--scenes 40] [--k 10] [--json] [--out DIR]
    python -m glimpse evaluate pgi [IMAGE ...] [--model ID] [--method M,M] [--k 0.1,0.25,0.5]
        [--perturbation gaussian|baseline] [--draws 50] [--segments 50] [--json] [--out DIR]
    python -m glimpse evaluate baselines [IMAGE ...] [--model ID] [--method M,M] [--steps 10] [--json] [--out DIR]
    python -m glimpse evaluate diffroar [--model ID,ID] [--method M,M] [--levels K,K] [--seeds 2] [--epochs 10]
        [--workers 1] [--no-cache] [--json] [--out DIR] [--folder DIR [--size 32]]
    python -m glimpse evaluate inversion [--width 500] [--epochs 40] [--eps 0.3] [--levels K,K] [--seeds 2]
        [--retrain-epochs 5] [--workers 1] [--no-cache] [--json] [--out DIR]

Every benchmark runs the same way: its options are read, its model loaded, its library function called, and
its result (:mod:`glimpse.evaluation.result`) printed as a table or, with ``--json``, one JSON object per row;
``--out DIR`` writes the files the Evaluate page downloads (:mod:`glimpse.evaluation.files`): ``<name>.json``
(the rows and each result's ``meta()``), ``<name>.csv`` (where the rows are flat) and ``<name>.npz`` (every
image's or retraining's scores, :mod:`glimpse.evaluation.npz`).

``blockdigits``: feature leakage on BlockDigits (:mod:`glimpse.evaluation.leakage`). For each model (default:
the shipped ``blockdigits-standard`` and ``blockdigits-robust``) and each method (default: every method in
the registry, with :data:`glimpse.evaluation.leakage.BENCHMARK_PARAMS` for the ones whose defaults assume a
224-px image), the map of the true class on the first N test images: ``signal_mass`` (share of positive
attribution on the digit) and ``null_topk`` (share of the top-k % pixels on the null block, k = 2.5 … 30).
Prints a table, or with ``--json`` one object per model and method.

``class-sensitivity``: Rebuffi et al.'s class sensitivity (:mod:`glimpse.evaluation.sensitivity`): per image,
the Spearman correlation between the map of the most likely and of the least likely class; the mean over the
images, per method (lower is better). Images default to the scikit-image samples, methods to the registry's
quick ones (not marked slow), the model to the embedded classifier.

``masks``: each image with its ground-truth mask (in order; white = inside, the image's size;
:mod:`glimpse.evaluation.masks`): per method, the mean over the pairs of ``pointing_game``, ``relevance_mass``,
``relevance_rank`` and ``topk_iou`` (top ``--k`` % pixels), for the map of the top-1 class at the image's size.

``shapes``: the embedded shapes classifier on fresh shapes scenes with exact object masks
(:func:`glimpse.evaluation.shapes_masks.mask_benchmark`): every object's class explained and scored against its own
mask (pointing game, relevance mass, relevance rank, top-k IoU), per method.

``pgi``: PGI and PGU (Han et al. 2022, OpenXAI) on superpixels (:mod:`glimpse.evaluation.pgi`): the mean change
of the top-1 class's probability when the top-k superpixels of a map are perturbed (PGI, higher is better) or
all the others are (PGU, lower is better), per method and k. Images default to the scikit-image samples.

``baselines``: after BEE, each baseline of the path methods (Integrated Gradients, DeepLIFT, GradientSHAP:
black, blurred, uniform noise, mean colour) scored by the deletion and insertion AUC of its map, and the
baseline each metric prefers (:mod:`glimpse.evaluation.baselines`).

``inversion``: the paper's own check of "feature inversion in gradients" (:mod:`glimpse.evaluation.inversion`):
a standard and an adversarially trained one-hidden-layer network on its synthetic data (x = ±e_j); how often
each one's largest and smallest |gradient| coordinate is the signal, and DiffROAR by retraining (negative for
the standard model, positive for the robust one). ``--out DIR`` also writes ``inversion.png``.

``diffroar``: DiffROAR on BlockDigits (:mod:`glimpse.evaluation.diffroar`): for each model (default: both
BlockDigits CNNs) and method (default: gradient), per level k the accuracy of a CNN retrained from scratch on
the images with only the top-k pixels of their map kept, minus the same with the bottom-k kept, over
``--seeds`` retrainings. Retrainings are cached under the user cache (``GLIMPSE_CACHE_DIR``), so a stopped run
resumes; ``--workers N`` runs N retrainings at once, each in its own process; ``--out DIR`` also writes
``diffroar.png``. ``--folder DIR`` runs it
on your own small data set (one sub-folder per class, :mod:`glimpse.evaluation.folders`): a small CNN trained on
80 % of it is the model explained, and the retrainings use the same architecture.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from glimpse.cli import CliError, parse_methods, parse_params
from glimpse.cli.options import options

log = logging.getLogger(__name__)

BLOCKDIGITS_MODELS = ("blockdigits-standard", "blockdigits-robust")


def _add(
    sub,
    name: str,
    help: str,
    description: str,
    *,
    func,
    stem: str,
    json: str,
    images: str | None = None,
    model: str | None = "classifier",
    model_default: str | None = None,
    method: str = "the quick ones",
    method_default: str | None = None,
    device: str = "auto",
    seed: str = "the methods' random draws",
) -> argparse.ArgumentParser:
    """A benchmark's subcommand: IMAGE arguments (``images``: ``"*"``, ``"+"`` or None) and the shared options
    (:func:`glimpse.cli.options.options`), ``--out`` writing ``stem``'s files."""
    shared = options(
        device=device,
        model=model,
        model_default=model_default,
        method=method,
        method_default=method_default,
        param=True,
        seed=seed,
        out=f"{stem}.json, .csv and .npz (a folder, created)",
        json=json,
    )
    p = sub.add_parser(name, help=help, description=description, parents=[shared])
    if images is not None:
        what = "image files" + (" (default: the scikit-image samples)" if images == "*" else "")
        p.add_argument("images", nargs=images, help=what)
    p.set_defaults(func=func, stem=stem)
    return p


def _retraining(p: argparse.ArgumentParser, *, seeds: str) -> None:
    """The options of the benchmarks that retrain (DiffROAR, the synthetic check)."""
    p.add_argument("--levels", default=None, help="fractions kept, comma-separated (default: the paper's)")
    p.add_argument("--seeds", type=int, default=2, help=f"retrainings per level and side (default 2{seeds})")
    p.add_argument("--no-cache", action="store_true", help="retrain every cell (default: reuse finished ones)")
    p.add_argument(
        "--workers", type=int, default=1, help="retrainings at once, one process each (default 1: in this process)"
    )


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score saliency maps against known truth: blockdigits, shapes, class-sensitivity, masks, pgi, baselines, "
        "diffroar, inversion",
        description="Score saliency methods against ground truth.",
    )
    sub = p.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    b = _add(
        sub,
        "blockdigits",
        "feature leakage on BlockDigits: attribution on the digit vs on the null block",
        "Feature leakage of every method on BlockDigits (signal_mass, null_topk), per model.",
        func=run_blockdigits,
        stem="leakage",
        json="one object per model and method",
        model="classifiers",
        model_default=",".join(BLOCKDIGITS_MODELS),
        method="all",
    )
    b.add_argument("--images", type=int, default=100, help="test images scored per model (default 100, max 359)")

    _add(
        sub,
        "class-sensitivity",
        "does the map change with the class? (Rebuffi et al. 2020; lower is better)",
        "Class sensitivity: Spearman ρ between the maps of the most and the least likely class.",
        func=run_class_sensitivity,
        stem="class_sensitivity",
        json="one object per method",
        images="*",
    )

    m = _add(
        sub,
        "masks",
        "score maps against ground-truth masks (pointing game, relevance mass and rank, top-k IoU)",
        "Score each method's map of the top-1 class against each image's mask (white = inside).",
        func=run_masks,
        stem="masks",
        json="one object per method",
        images="+",
    )
    m.add_argument("--masks", nargs="+", required=True, help="one mask per image, in the same order")
    m.add_argument("--k", type=float, default=10.0, help="top-k %% of pixels for topk_iou (default 10)")

    h = _add(
        sub,
        "shapes",
        "the shapes classifier's (or shapes ViT's) maps against exact object masks (pointing game, relevance mass, ...)",
        "Explain each object's class in fresh shapes scenes and score the map against the object's mask "
        "(--model shapes-vit: the embedded ViT, with the attention methods among the defaults).",
        func=run_shapes,
        stem="shapes",
        json="one object per method",
        model_default="shapes-classifier",
        seed="the scenes and the methods' random draws",
    )
    h.add_argument("--scenes", type=int, default=40, help="scenes rendered (one or two objects each; default 40)")
    h.add_argument("--k", type=float, default=10.0, help="top-k %% of pixels for topk_iou (default 10)")

    g = _add(
        sub,
        "pgi",
        "PGI / PGU on superpixels: perturb the top-k regions of a map, or all the others",
        "Prediction gaps on important (PGI, higher is better) and unimportant (PGU, lower) superpixels.",
        func=run_pgi,
        stem="pgi_pgu",
        json="one object per method and k",
        images="*",
    )
    g.add_argument("--k", default="0.1,0.25,0.5", help="fractions of superpixels, comma-separated")
    g.add_argument("--perturbation", choices=("gaussian", "baseline"), default="gaussian")
    g.add_argument("--sigma", type=float, default=0.1, help="noise σ as a fraction of the input range (default 0.1)")
    g.add_argument("--draws", type=int, default=50, help="noise draws per image (default 50)")
    g.add_argument("--segments", type=int, default=50, help="SLIC superpixels asked for (default 50)")

    e = _add(
        sub,
        "baselines",
        "which baseline should IG / DeepLIFT / GradientSHAP use? (deletion and insertion AUC per baseline)",
        "Score each baseline of the path methods by the deletion and insertion AUC of its maps.",
        func=run_baselines,
        stem="baselines",
        json="one object per method and baseline",
        images="*",
        method="integrated_gradients,deeplift,gradient_shap",
        method_default="integrated_gradients,deeplift,gradient_shap",
    )
    e.add_argument("--steps", type=int, default=10, help="deletion/insertion steps (default 10)")

    d = _add(
        sub,
        "diffroar",
        "DiffROAR on BlockDigits: retrain on the top-k vs the bottom-k pixels of each map",
        "DiffROAR(k) = accuracy(top-k pixels kept) − accuracy(bottom-k kept), retrained from scratch.",
        func=run_diffroar,
        stem="diffroar",
        json="one object per model, method and level",
        model="classifiers",
        model_default=",".join(BLOCKDIGITS_MODELS),
        method="gradient",
        method_default="gradient",
        device="cpu",
    )
    _retraining(d, seeds="")
    d.add_argument("--epochs", type=int, default=10, help="epochs per retraining (default 10)")
    d.add_argument(
        "--folder",
        type=Path,
        default=None,
        help="your own small data set instead of BlockDigits: one sub-folder of images per class; a small CNN "
        "trained on 80 %% of it is the model explained",
    )
    d.add_argument(
        "--size", type=int, default=32, help="with --folder: images resized to this square side (default 32)"
    )

    v = sub.add_parser(
        "inversion",
        help="feature inversion on the paper's synthetic data: standard vs robust gradients, with DiffROAR",
        description="Train a standard and an adversarially trained one-hidden-layer network on Shah et al.'s "
        "synthetic data (x = ±e_j) and test whether their input gradients' top coordinate is the signal; "
        "then DiffROAR by retraining (negative for the standard model, positive for the robust one).",
        parents=[
            options(
                seed="the data and the two models",
                out="inversion.json, .npz and .png (a folder, created)",
                json="one object per model",
            )
        ],
    )
    v.add_argument("--width", type=int, default=500, help="hidden units (default 500; the paper 25,000)")
    v.add_argument("--epochs", type=int, default=40, help="training epochs (default 40; the paper 500)")
    v.add_argument("--eps", type=float, default=0.3, help="l-inf radius of adversarial training (default 0.3)")
    _retraining(v, seeds="; 0: no DiffROAR")
    v.add_argument("--retrain-epochs", type=int, default=5, help="epochs per retraining (default 5)")
    v.set_defaults(func=run_inversion, stem="inversion")


# ---------------------------------------------------------------------------------------------- the one path
def _finish(args: argparse.Namespace, files, table: Callable[[list[dict]], list[str]], plot=None) -> int:
    """The end of every benchmark: ``files`` (:class:`~glimpse.evaluation.files.EvaluationFiles`) written to
    ``--out`` (with ``plot()``'s PNG where given), then the rows as JSON lines or the text lines of ``table``."""
    rows = files.records()
    if args.out is not None:
        png = plot() if plot is not None else None
        files.write(args.out, extra={f"{files.stem}.png": png} if png is not None else None)
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        sys.stdout.write("\n".join(table(rows)) + "\n")
    return 0


def _lines(head: str, line: str) -> Callable[[list[dict]], list[str]]:
    """A text table: ``head``, then ``line`` formatted with each row's values."""
    return lambda rows: [head, *(line.format(**row) for row in rows)]


def _files(args: argparse.Namespace, results, **how):
    from glimpse.evaluation.files import EvaluationFiles

    return EvaluationFiles(args.stem, tuple(results), **how)


def _panel(
    args: argparse.Namespace, *, quick: bool = True, defaults: Callable[[str], dict] | None = None, bundle=None
) -> list:
    """``--method`` and ``--param`` as ``explain`` takes them: (name, params) per method, ``defaults(name)``
    under the overrides (no ``--method``: the methods that apply to ``bundle``)."""
    names = parse_methods(args.method, quick=quick, bundle=bundle)
    overrides = parse_params(args.param, names)
    return [(n, {**(defaults(n) if defaults else {}), **overrides[n]}) for n in names]


def _images(paths: list[str]) -> dict:
    """Images by file name, or the scikit-image samples when no path is given."""
    from glimpse.images import load_image, sample_images

    return {Path(p).name: load_image(p) for p in paths} if paths else sample_images()


def _classifier(args: argparse.Namespace):
    """``--model`` (default: the embedded classifier) on ``--device``."""
    from models.registry import DEFAULT_CLASSIFIER, load_classifier

    return load_classifier(args.model or DEFAULT_CLASSIFIER, device=args.device)


def _model_ids(args: argparse.Namespace) -> list[str]:
    ids = [m.strip() for m in args.model.split(",") if m.strip()]
    if not ids:
        raise CliError("--model: give at least one classifier id")
    return ids


def _progress(tag: str = ""):
    """A progress callback that logs ``tag``, the percentage and the message (shown with ``-v``)."""
    return lambda fraction, message: log.info("%s%3.0f%% %s", f"{tag} " if tag else "", 100 * fraction, message)


def _levels(text: str | None, what: str = "--levels", default: tuple[float, ...] | None = None) -> tuple[float, ...]:
    from glimpse.evaluation.diffroar import LEVELS

    if text is None:
        return LEVELS if default is None else default
    try:
        levels = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as err:
        raise CliError(f"{what}: fractions such as 0.1,0.5, got {text!r}") from err
    if not levels or not all(0 < k <= 1 for k in levels):
        raise CliError(f"{what}: each a fraction in (0, 1], got {text!r}")
    return levels


def _cache(args: argparse.Namespace):
    from glimpse.evaluation.diffroar import cache

    return None if args.no_cache else cache()


# ---------------------------------------------------------------------------------------------- the benchmarks
def run_blockdigits(args: argparse.Namespace) -> int:
    from glimpse.evaluation.blockdigits import blockdigits
    from glimpse.evaluation.leakage import blockdigits_params, leakage_benchmark
    from models.registry import load_classifier

    methods = _panel(args, quick=False, defaults=blockdigits_params)
    model_ids = _model_ids(args)
    data = blockdigits("test", seed=0)
    if not 1 <= args.images <= len(data):
        raise CliError(f"--images: between 1 and {len(data)} (the BlockDigits test images), got {args.images}")
    results = [
        leakage_benchmark(
            load_classifier(model_id, device=args.device),
            data,
            methods,
            images=args.images,
            seed=args.seed,
            progress=_progress(model_id),
        )
        for model_id in model_ids
    ]
    return _finish(args, _files(args, results), lambda rows: _leakage_table(rows, results[0].ks))


def run_class_sensitivity(args: argparse.Namespace) -> int:
    from glimpse.evaluation.sensitivity import class_sensitivity

    methods = _panel(args)
    images = _images(args.images)
    result = class_sensitivity(
        _classifier(args), list(images.values()), methods, names=list(images), seed=args.seed, progress=_progress()
    )
    head = f"{'method':<22} {'class sensitivity':>17} {'sd':>6}  (Spearman ρ, {len(images)} images; lower is better)"
    line = "{method:<22} {class_sensitivity:17.3f} {class_sensitivity_sd:6.3f}"
    return _finish(args, _files(args, [result]), _lines(head, line))


def run_masks(args: argparse.Namespace) -> int:
    from glimpse.evaluation.masks import load_mask, mask_scores
    from glimpse.images import load_image

    if len(args.masks) != len(args.images):
        raise CliError(f"--masks: {len(args.masks)} masks for {len(args.images)} images; give one per image, in order")
    methods = _panel(args)
    images = [load_image(p) for p in args.images]
    masks = [load_mask(p, image.shape[:2]) for p, image in zip(args.masks, images)]
    names = [Path(p).name for p in args.images]
    result = mask_scores(_classifier(args), images, masks, methods, names=names, k=args.k, seed=args.seed)
    return _finish(args, _files(args, [result]), lambda rows: _mask_table(rows, len(images), args.k))


def _mask_table(rows: list[dict], pairs: int, k: float) -> list[str]:
    from glimpse.evaluation.masks import METRICS

    out = [f"{'method':<22} " + " ".join(f"{m:>15}" for m in METRICS) + f"  ({pairs} pairs, k = {k:g} %)"]
    return out + [f"{r['method']:<22} " + " ".join(f"{r[m]:15.3f}" for m in METRICS) for r in rows]


def run_shapes(args: argparse.Namespace) -> int:
    from glimpse.evaluation.shapes_masks import mask_benchmark
    from models.registry import load_classifier
    from models.shapes_classifier import MODEL_ID

    if not 1 <= args.scenes <= 1000:
        raise CliError(f"--scenes: between 1 and 1000, got {args.scenes}")
    bundle = load_classifier(args.model or MODEL_ID, device=args.device)
    methods = _panel(args, bundle=bundle)
    result = mask_benchmark(bundle, methods, scenes=args.scenes, seed=args.seed, k=args.k)
    return _finish(args, _files(args, [result]), lambda rows: _mask_table(rows, len(result.names), args.k))


def run_pgi(args: argparse.Namespace) -> int:
    from glimpse.evaluation.pgi import pgi_pgu

    methods = _panel(args)
    ks = _levels(args.k, what="--k")
    images = _images(args.images)
    result = pgi_pgu(
        _classifier(args),
        list(images.values()),
        methods,
        names=list(images),
        ks=ks,
        perturbation=args.perturbation,
        sigma=args.sigma,
        draws=args.draws,
        segments=args.segments,
        seed=args.seed,
        progress=_progress(),
    )
    head = f"{'method':<22} {'k':>5} {'PGI ↑':>8} {'PGU ↓':>8}  ({len(images)} images, {args.perturbation})"
    return _finish(args, _files(args, [result]), _lines(head, "{method:<22} {k:5.2f} {pgi:8.4f} {pgu:8.4f}"))


def run_baselines(args: argparse.Namespace) -> int:
    from glimpse.evaluation.baselines import PATH_METHODS, baseline_scores

    names = parse_methods(args.method)
    for n in names:
        if n not in PATH_METHODS:
            raise CliError(f"--method: {n!r} takes no baseline; path methods: {', '.join(PATH_METHODS)}")
    if not 2 <= args.steps <= 100:
        raise CliError(f"--steps: between 2 and 100, got {args.steps}")
    params = parse_params(args.param, names)
    images = _images(args.images)
    result = baseline_scores(
        _classifier(args),
        list(images.values()),
        methods=names,
        params=params,
        names=list(images),
        steps=args.steps,
        seed=args.seed,
        progress=_progress(),
    )

    def table(rows: list[dict]) -> list[str]:
        out = [f"{'method':<22} {'baseline':<9} {'deletion AUC ↓':>15} {'insertion AUC ↑':>16}  ({len(images)} images)"]
        for r in rows:
            mark = "  best: " + ", ".join(r["preferred_by"]) if r["preferred_by"] else ""
            out.append(
                f"{r['method']:<22} {r['baseline']:<9} {r['deletion_auc']:15.3f} {r['insertion_auc']:16.3f}{mark}"
            )
        return out

    return _finish(args, _files(args, [result]), table)


def run_diffroar(args: argparse.Namespace) -> int:
    from glimpse.evaluation.diffroar import blockdigits_diffroar, plot_png
    from glimpse.evaluation.leakage import blockdigits_params
    from models.blockdigits import CHECKPOINTS, BlockDigitsCNN
    from models.registry import load_classifier

    methods = _panel(args, quick=False, defaults=None if args.folder is not None else blockdigits_params)
    levels = _levels(args.levels)
    if args.seeds < 1 or args.epochs < 1 or args.workers < 1:
        raise CliError("--seeds, --epochs and --workers: at least 1")
    how = {"levels": levels, "seeds": range(args.seeds), "epochs": args.epochs, "cache_dir": _cache(args)}
    how["workers"] = args.workers
    if args.folder is not None:
        results = _folder_diffroar(args, methods, how)
    else:
        model_ids = _model_ids(args)
        for model_id in model_ids:
            if model_id not in CHECKPOINTS:
                raise CliError(
                    f"--model: DiffROAR retrains BlockDigits CNNs; {model_id!r} is not one of {', '.join(CHECKPOINTS)}"
                )
        results = []
        for model_id in model_ids:
            bundle = load_classifier(model_id, device=args.device)
            for name, params in methods:
                progress = _progress(f"{model_id} {name}")
                results.append(blockdigits_diffroar(bundle, name, params, BlockDigitsCNN, progress=progress, **how))

    def table(rows: list[dict]) -> list[str]:
        ks = "  ".join(f"{100 * k:>6g}%" for k in levels)
        out = [f"{'model':<22} {'method':<22} DiffROAR at k = {ks}"]
        for r in results:
            d = r.diffroar.mean(1)
            out.append(f"{r.model_id:<22} {r.method:<22} {'':16}" + "  ".join(f"{v:+7.3f}" for v in d))
        return out

    return _finish(args, _files(args, results), table, plot=lambda: plot_png(results))


def _folder_diffroar(args: argparse.Namespace, methods: list, how: dict) -> list:
    """DiffROAR on the user's folder (:func:`glimpse.evaluation.diffroar.folder_diffroar`): a small CNN of the
    shapes and BlockDigits models' kind, explained as a classifier bundle on the CPU."""
    import functools

    import torch

    from glimpse.evaluation.diffroar import folder_diffroar
    from glimpse.evaluation.folders import image_folder
    from models.registry import ClassifierBundle
    from models.small_cnn import TARGET_LAYERS, SmallCNN

    if args.size % 8 or not 8 <= args.size <= 128:
        raise CliError(f"--size: a multiple of 8 between 8 and 128, got {args.size}")
    data = image_folder(args.folder, side=args.size)
    for message in data.skipped:
        log.warning("skipped %s", message)
    model_id = f"folder:{Path(args.folder).name}"
    return folder_diffroar(
        data,
        methods,
        functools.partial(SmallCNN, widths=(16, 32, 64), hidden=128),
        functools.partial(ClassifierBundle, target_layers=TARGET_LAYERS, device=torch.device("cpu")),
        model_id=model_id,
        progress_of=lambda name: _progress(f"{model_id} {name}"),
        **how,
    )


def run_inversion(args: argparse.Namespace) -> int:
    from glimpse.evaluation.diffroar import plot_png
    from glimpse.evaluation.inversion import LEVELS, PAPER, feature_inversion

    if args.width < 1 or args.epochs < 1 or args.retrain_epochs < 1 or args.workers < 1 or args.seeds < 0:
        raise CliError("--width, --epochs, --retrain-epochs, --workers: at least 1; --seeds: at least 0")
    if not 0 < args.eps <= 1:
        raise CliError(f"--eps: a radius in (0, 1] (the data lie in [-1, 1]), got {args.eps}")
    levels = _levels(args.levels, default=LEVELS)
    result = feature_inversion(
        width=args.width,
        epochs=args.epochs,
        eps=args.eps,
        seed=args.seed,
        levels=levels if args.seeds else None,
        seeds=range(args.seeds),
        retrain_epochs=args.retrain_epochs,
        cache_dir=_cache(args),
        progress=_progress("inversion"),
        workers=args.workers,
    )
    curves = result.curves()

    def plot() -> bytes | None:
        title, xlabel = "DiffROAR on the synthetic data (x = ±e_j)", "coordinates kept, k (% of 10)"
        return plot_png(curves, title=title, xlabel=xlabel) if curves else None

    def table(rows: list[dict]) -> list[str]:
        out = [f"{'model':<10} {'accuracy':>8} {'P[top = signal]':>16} {'P[bottom = signal]':>19} {'AQ':>7}  paper AQ"]
        for i, row in enumerate(rows):
            out.append(
                f"{row['model']:<10} {row['test_accuracy']:8.3f} {row['p_top_signal']:16.3f} "
                f"{row['p_bottom_signal']:19.3f} {row['attribution_quality']:+7.3f}  {PAPER['attribution_quality'][i]:+.3f}"
            )
        for row in rows:
            if "diffroar" in row:
                cells = "  ".join(f"{float(k) * 100:g}%: {v:+.3f}" for k, v in row["diffroar"].items())
                out.append(f"DiffROAR {row['model']:<9} {cells}")
        return out

    return _finish(args, result.files(), table, plot=plot)


def _leakage_table(rows: list[dict], ks: tuple[float, ...]) -> list[str]:
    head = f"{'model':<22} {'method':<22} {'signal mass':>11}  " + "  ".join(f"null@{k:g}%".rjust(9) for k in ks)
    out = [head, "-" * len(head)]
    for row in rows:
        tops = "  ".join(f"{100 * v:8.1f}%" for v in row["null_topk"].values())
        out.append(f"{row['model']:<22} {row['method']:<22} {100 * row['signal_mass']:10.1f}%  {tops}")
    return out
