"""Classifiers from model hubs: Hugging Face (``hf:``), torchvision (``torchvision:``) and timm (``timm:``).

Each loader returns a :class:`~models.bundle.ClassifierBundle` whose model maps a normalised
(B, 3, H, W) tensor to plain logits (B, num_classes). Suggested target layers are found by one dry
forward pass: for CNNs, the last module at each spatial resolution (deepest first, as Grad-CAM —
Selvaraju et al. 2017 — prefers the last convolutional stage); for ViTs, the last block's pre-attention
layer norm, whose (B, prefix + H·W, C) output :func:`glimpse.token_grid.tokens_to_grid` turns into a map.

torchvision and timm are optional (requirements-extras.txt): PyPI's torchvision does not import beside
the CPU-only torch build, so the loaders check the import and say what to install instead of failing
obscurely.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import socket
from pathlib import Path

import torch
from torch import nn

from glimpse.token_grid import TokenGrid
from models.bundle import ClassifierBundle, ModelLoadError, freeze, imagenet_labels

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EXTRAS_HINT = (
    "install the optional extras with a normal (non-CPU-only) torch build: pip install -r requirements-extras.txt"
)
#: Names of a ViT block's pre-attention norm in Hugging Face, timm and torchvision.
_VIT_BLOCK_NORMS = ("layernorm_before", "layer_norm1", "norm1", "ln_1")  # layer_norm1: CLIP
_MAX_PREFIX = 16  # CLS + distillation + up to 14 registers; more means the grid guess is wrong


class LogitsOnly(nn.Module):
    """Wrap a Hugging Face model so ``forward(pixels)`` returns the logits tensor, not a ModelOutput."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.hf = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.hf(pixel_values=pixel_values).logits


# --------------------------------------------------------------------------------------------------
# Layer discovery
# --------------------------------------------------------------------------------------------------


def _trace_outputs(model: nn.Module, input_size: tuple[int, int], device: torch.device) -> list[tuple[str, tuple]]:
    """(module path, output shape) for every module returning a tensor, in the order they finish."""
    seen: list[tuple[str, tuple]] = []
    handles = []

    def hook(name):
        def record(_module, _inputs, output):
            if isinstance(output, torch.Tensor):
                seen.append((name, tuple(output.shape)))

        return record

    try:
        for name, module in model.named_modules():
            if name:
                handles.append(module.register_forward_hook(hook(name)))
        with torch.no_grad():
            model(torch.zeros(1, 3, *input_size, device=device))
    finally:
        for h in handles:
            h.remove()
    return seen


def cnn_target_layers(trace: list[tuple[str, tuple]], limit: int = 5) -> tuple[str, ...]:
    """Deepest module at each spatial resolution (>= 2×2), deepest resolution first."""
    last_at: dict[tuple[int, int], str] = {}
    order: list[tuple[int, int]] = []
    for name, shape in trace:
        if len(shape) == 4 and shape[2] >= 2 and shape[3] >= 2:
            hw = (shape[2], shape[3])
            if hw in last_at:
                order.remove(hw)
            last_at[hw] = name
            order.append(hw)
    return tuple(last_at[hw] for hw in reversed(order))[:limit]


def _block_list(model: nn.Module) -> tuple[str, nn.ModuleList] | None:
    """The transformer's list of blocks: the longest ModuleList whose items hold a pre-attention norm."""
    best = None
    for name, module in model.named_modules():
        if isinstance(module, (nn.ModuleList, nn.Sequential)) and len(module) > 0:
            last = module[-1]
            if any(hasattr(last, n) for n in _VIT_BLOCK_NORMS) and (best is None or len(module) > len(best[1])):
                best = (name, module)
    return best


def vit_layout(
    model: nn.Module, trace: list[tuple[str, tuple]], grid_hw: tuple[int, int]
) -> tuple[tuple[str, ...], TokenGrid] | None:
    """Target layers (last block's norm first) and token grid for a ViT, or None if it is not one."""
    found = _block_list(model)
    if found is None:
        return None
    path, blocks = found
    shapes = dict(trace)
    layers = []
    n_tokens = None
    # the blocks' own names, not their positions: torchvision's encoder is a Sequential of encoder_layer_0, ...
    keys = [key for key, _ in blocks.named_children()]
    for idx in (len(blocks) - 1, len(blocks) // 2):
        norm = next(n for n in _VIT_BLOCK_NORMS if hasattr(blocks[idx], n))
        name = f"{path}.{keys[idx]}.{norm}"
        shape = shapes.get(name)
        if shape is None or len(shape) != 3:
            return None
        n_tokens = n_tokens or shape[1]
        if name not in layers:
            layers.append(name)
    h, w = grid_hw
    prefix = n_tokens - h * w
    if not 0 <= prefix <= _MAX_PREFIX:
        return None
    return tuple(layers), TokenGrid(prefix=prefix, height=h, width=w)


def _bundle(
    model_id: str,
    model: nn.Module,
    labels: tuple[str, ...],
    input_size: tuple[int, int],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    device: torch.device,
    grid_hw: tuple[int, int] | None,
) -> ClassifierBundle:
    model = freeze(model, device)
    trace = _trace_outputs(model, input_size, device)
    logits_shape = trace[-1][1] if trace else None
    vit = vit_layout(model, trace, grid_hw) if grid_hw else None
    if vit is not None:
        layers, grid = vit
        kind = "vit"
    else:
        layers, grid, kind = cnn_target_layers(trace), None, "cnn"
        if not layers:
            raise ModelLoadError(
                f"model: {model_id} has no layer with a spatial (B, C, H, W) output or a ViT token grid; "
                "Glimpse cannot place its maps on the image"
            )
    if len(labels) == 0:
        raise ModelLoadError(f"model: {model_id} has no label names")
    log.info("loaded %s: %s, %d classes, layers %s, logits %s", model_id, kind, len(labels), layers, logits_shape)
    return ClassifierBundle(
        model_id=model_id,
        model=model,
        labels=labels,
        input_size=input_size,
        mean=_triple(mean, "mean"),
        std=_triple(std, "std"),
        target_layers=layers,
        device=device,
        kind=kind,
        token_grid=grid,
    )


def _triple(values, name: str) -> tuple[float, float, float]:
    values = [float(v) for v in (values if hasattr(values, "__len__") else [values])]
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        raise ModelLoadError(f"model: image processor {name} has {len(values)} values; expected 3 (RGB)")
    return tuple(values)


def _hw(size) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    if isinstance(size, dict):
        if "height" in size and "width" in size:
            return (int(size["height"]), int(size["width"]))
        if "shortest_edge" in size:
            return (int(size["shortest_edge"]), int(size["shortest_edge"]))
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return (int(size[0]), int(size[1]))
    raise ModelLoadError(f"model: cannot read an input size from {size!r}")


# --------------------------------------------------------------------------------------------------
# Hugging Face
# --------------------------------------------------------------------------------------------------


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe: without it an offline machine waits out the hub client's retries."""
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def _offline_error(ref: str) -> ModelLoadError:
    return ModelLoadError(
        f"model: cannot reach the Hugging Face hub to fetch {ref!r} and it is not in the local cache; "
        "you appear to be offline — connect once to download it, or use a local folder (hf:/path/to/model)"
    )


def _cache_first(load, ref: str, **kwargs):
    """Load from the local cache; only if that fails, and the hub answers, from the hub."""
    try:
        return load(ref, local_files_only=True, **kwargs)
    except OSError:
        if not _hub_reachable():
            raise _offline_error(ref) from None
        return load(ref, **kwargs)


def _hf_processor_config(ref: str, local: bool) -> dict | None:
    """preprocessor_config.json saved next to the model, or None if the model has none."""
    if local:
        path = Path(ref) / "preprocessor_config.json"
        return json.loads(path.read_text()) if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    def download(repo: str, local_files_only: bool = False) -> dict:
        return json.loads(
            Path(hf_hub_download(repo, "preprocessor_config.json", local_files_only=local_files_only)).read_text()
        )

    try:
        return _cache_first(download, ref)
    except EntryNotFoundError:
        return None


def _default_processor_values(model_type: str) -> tuple[tuple, tuple, str]:
    """mean/std of the model type's default image processor (e.g. ViT: 0.5/0.5), else ImageNet's."""
    try:
        from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING_NAMES

        names = IMAGE_PROCESSOR_MAPPING_NAMES.get(model_type)
        if isinstance(names, dict):  # transformers 5: {"pil": ..., "torchvision": ...}; the PIL one imports here
            names = (names.get("pil"), names.get("torchvision"))
        names = (names,) if isinstance(names, str) else tuple(n for n in (names or ()) if n)
        import transformers

        for name in names:
            cls = getattr(transformers, name, None)
            if cls is None:
                continue
            proc = cls()
            if getattr(proc, "image_mean", None) is not None and getattr(proc, "image_std", None) is not None:
                return tuple(proc.image_mean), tuple(proc.image_std), name
    except (ImportError, AttributeError, TypeError, ValueError) as err:
        log.warning("no default image processor for %s (%s); using ImageNet mean/std", model_type, err)
    return IMAGENET_MEAN, IMAGENET_STD, "ImageNet defaults"


def load_hf(model_id: str, device: torch.device) -> ClassifierBundle:
    """``hf:<repo id or folder>``: a Hugging Face ``AutoModelForImageClassification``.

    Labels come from ``config.id2label``; input size, mean and std from ``preprocessor_config.json`` saved
    with the model, else from the config (``image_size``) and the model type's default image processor.
    The model runs with eager attention so attention probabilities can be hooked.
    """
    ref = model_id.split(":", 1)[1].strip()
    if not ref:
        raise ModelLoadError("model: 'hf:' needs a repo id or a folder, e.g. hf:google/vit-base-patch16-224")
    from transformers import AutoConfig, AutoModelForImageClassification

    local = Path(ref).expanduser().is_dir()
    if local:
        ref = str(Path(ref).expanduser())
    elif Path(ref).expanduser().exists() or ref.startswith((".", "/", "~")):
        raise ModelLoadError(f"model: {ref!r} is not a folder with a saved Hugging Face model")
    try:
        if local:
            config = AutoConfig.from_pretrained(ref)
            net = AutoModelForImageClassification.from_pretrained(ref, config=config, attn_implementation="eager")
        else:
            config = _cache_first(AutoConfig.from_pretrained, ref)
            net = _cache_first(
                AutoModelForImageClassification.from_pretrained, ref, config=config, attn_implementation="eager"
            )
        processor = _hf_processor_config(ref, local)
    except ModelLoadError:
        raise
    except OSError as err:
        cause = repr(err.__cause__ or err)
        if "LocalEntryNotFound" in cause or "couldn't connect" in str(err):
            raise _offline_error(ref) from err
        raise ModelLoadError(
            f"model: cannot load {ref!r} from the Hugging Face hub: {str(err).splitlines()[0]}"
        ) from err
    except ValueError as err:  # e.g. a config whose architecture is not an image classifier
        raise ModelLoadError(f"model: {ref!r} is not an image classifier: {str(err).splitlines()[0]}") from err

    id2label = getattr(config, "id2label", None) or {}
    vision = getattr(config, "vision_config", None) or config  # CLIP keeps the image settings there
    labels = tuple(str(id2label.get(i, id2label.get(str(i), f"class {i}"))) for i in range(config.num_labels))
    if processor is not None and processor.get("image_mean") is not None:
        mean, std = processor["image_mean"], processor["image_std"]
        size = _hw(processor.get("crop_size") or processor.get("size") or vision.image_size)
    else:
        mean, std, source = _default_processor_values(config.model_type)
        size = _hw(getattr(vision, "image_size", 224))
        log.info("%s: no preprocessor_config.json; mean/std from %s", ref, source)
    patch = getattr(vision, "patch_size", None)
    grid_hw = (size[0] // patch, size[1] // patch) if isinstance(patch, int) and patch > 0 else None
    bundle = _bundle(model_id, LogitsOnly(net), labels, size, mean, std, device, grid_hw)
    if getattr(config, "problem_type", None) == "multi_label_classification":  # each class its own sigmoid
        bundle = dataclasses.replace(bundle, multilabel=True, lock=bundle.lock)
    return bundle


# --------------------------------------------------------------------------------------------------
# Optional extras: torchvision, timm
# --------------------------------------------------------------------------------------------------


def import_extra(name: str):
    """Import an optional package or raise ModelLoadError naming requirements-extras.txt.

    ``import torchvision`` raises RuntimeError (operator registration) or ImportError when its wheel
    was built for another torch; both mean "not usable here".
    """
    try:
        return importlib.import_module(name)
    except (ImportError, RuntimeError, OSError) as err:
        raise ModelLoadError(
            f"model: {name} is not usable here ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
            + EXTRAS_HINT
        ) from err


def extra_available(name: str) -> bool:
    """Whether an optional package imports (for the UI to say so up front)."""
    try:
        import_extra(name)
    except ModelLoadError:
        return False
    return True


def _download_error(model_id: str, err: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"model: cannot download the weights of {model_id} ({type(err).__name__}: {str(err).splitlines()[0]}); "
        "you may be offline — connect once so they are cached"
    )


def load_torchvision(model_id: str, device: torch.device) -> ClassifierBundle:
    """``torchvision:<name>``: ``torchvision.models.get_model(name, weights="DEFAULT")``.

    Mean, std and crop size come from the weights' own inference transforms; labels from their metadata.
    """
    name = model_id.split(":", 1)[1].strip()
    tv = import_extra("torchvision")
    known = tv.models.list_models(module=tv.models)
    if name not in known:
        raise ModelLoadError(f"model: unknown torchvision classifier {name!r}; e.g. resnet50, vit_b_16, convnext_tiny")
    weights = tv.models.get_model_weights(name).DEFAULT
    try:
        net = tv.models.get_model(name, weights=weights)
    except (OSError, RuntimeError) as err:  # URLError is an OSError
        raise _download_error(model_id, err) from err
    tf = weights.transforms()
    crop = tf.crop_size[0] if isinstance(tf.crop_size, (list, tuple)) else tf.crop_size
    size = (int(crop), int(crop))
    patch = getattr(net, "patch_size", None)
    grid_hw = (size[0] // patch, size[1] // patch) if isinstance(patch, int) else None
    return _bundle(model_id, net, tuple(weights.meta["categories"]), size, tf.mean, tf.std, device, grid_hw)


def load_timm(model_id: str, device: torch.device) -> ClassifierBundle:
    """``timm:<name>``: ``timm.create_model(name, pretrained=True)`` (the hub's weights, or timm's cache of them);
    ``timm:<folder>``: a model saved by ``timm.models.save_for_hf`` (``config.json`` beside its weights), loaded
    offline as timm's ``local-dir:`` source, as ``hf:<folder>`` loads a Hugging Face one.

    Mean, std and input size come from the resolved data config; labels from the config's ``label_names`` (with
    their ``label_descriptions``), else ImageNet's where the class count is ImageNet's.
    """
    ref = model_id.split(":", 1)[1].strip()
    if not ref:
        raise ModelLoadError("model: 'timm:' needs a model name or a folder, e.g. timm:vit_small_patch16_224")
    folder = Path(ref).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ModelLoadError(
                f"model: {ref!r} has no config.json; save a timm model there with timm.models.save_for_hf(model, folder)"
            )
        name = f"local-dir:{folder}"
    elif folder.exists() or ref.startswith((".", "/", "~")):
        raise ModelLoadError(f"model: {ref!r} is not a folder with a timm model saved by timm.models.save_for_hf")
    else:
        name = ref
    timm = import_extra("timm")
    try:
        net = timm.create_model(name, pretrained=True)
    except RuntimeError as err:
        if "Unknown model" in str(err):
            raise ModelLoadError(f"model: unknown timm model {ref!r}; see timm.list_models()") from err
        raise _download_error(model_id, err) from err
    except OSError as err:
        raise _download_error(model_id, err) from err
    cfg = timm.data.resolve_data_config({}, model=net)
    size = (int(cfg["input_size"][1]), int(cfg["input_size"][2]))
    labels = _timm_labels(timm, net)
    grid_hw = None
    patch_embed = getattr(net, "patch_embed", None)
    if patch_embed is not None and getattr(patch_embed, "grid_size", None) is not None:
        grid_hw = tuple(int(v) for v in patch_embed.grid_size)
    return _bundle(model_id, net, labels, size, cfg["mean"], cfg["std"], device, grid_hw)


def _timm_labels(timm, net: nn.Module) -> tuple[str, ...]:
    """The class names a saved model carries (``save_for_hf(model, folder, model_config={"label_names": ...})``,
    described by ``label_descriptions`` where given); else ImageNet's, guessed from the class count as timm does."""
    n = net.num_classes
    cfg = getattr(net, "pretrained_cfg", None) or {}
    names, descriptions = cfg.get("label_names"), cfg.get("label_descriptions") or {}
    if isinstance(names, dict):  # id -> name, with gaps allowed
        names = [names.get(i, names.get(str(i))) for i in range(n)]
    if names is not None and len(names) == n and all(v is not None for v in names):
        return tuple(str(descriptions.get(v, v)) for v in names)
    try:
        from timm.data import ImageNetInfo, infer_imagenet_subset

        subset = infer_imagenet_subset(net)
        if subset:
            info = ImageNetInfo(subset)
            return tuple(info.index_to_description(i) for i in range(n))
    except ImportError:
        log.info("timm without ImageNetInfo; falling back to index labels")
    if n == 1000:
        return imagenet_labels()
    return tuple(f"class {i}" for i in range(n))
