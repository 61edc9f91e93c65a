"""Make the DAAM reference maps that ``tests/glimpse/attention/test_daam_reference.py`` compares Glimpse with.

What it does
------------
1. Builds a tiny random Stable-Diffusion-1.x pipeline from configs (nothing is downloaded): a CLIP BPE
   tokenizer written here (``vocab.json`` / ``merges.txt``), a 2-layer CLIPTextModel of width 32 with
   SD's 77 text positions, a UNet2DConditionModel with SD's four levels at a 64x64 latent (512-px images)
   but 8-16 channels, and a 4-level AutoencoderKL with 4 channels (scale factor 8). Unlike SD 1.x, the
   fourth (8x8) level also has cross-attention, so DAAM's skip of the 8x8 maps (``factor == 8``) drops
   real down/up layers, and the mid block (also 8x8) is present but not hooked by DAAM. The ``attn2``
   query and key weights are multiplied by ``QK_GAIN`` so the maps are peaked rather than flat.
   It is saved with ``save_pretrained`` (float32) to ``tiny_sd15/`` and loaded back from there, so both
   sides run the same saved weights.
2. Runs DAAM 0.2.0's documented usage on ``PROMPTS`` (fixed seed, ``STEPS`` DDIM steps, guidance
   ``GUIDANCE``)::

       with trace(pipe) as tc:
           out = pipe(prompt, ...)
           heat_map = tc.compute_global_heat_map()
           word = heat_map.compute_word_heat_map(w)

   and saves, per prompt, DAAM's token maps (``compute_global_heat_map().heat_maps``, 64x64, raw), each
   distinct word's map as DAAM computes it (``WordHeatMap.value``, 64x64, raw: DAAM merges every occurrence
   of a repeated word), the same word map expanded to the image with ``expand_as(image, absolute=True)``
   (DAAM's bicubic to 512x512, no min-max; stored every 16th pixel from row/column 7 to stay small), and
   the generated image (uint8, every 4th pixel, plus its exact channel means) in ``daam_reference.npz``.

How to re-run it (in a virtual environment of its own: DAAM pins old diffusers/transformers)
------------------------------------------------------------------------------------------
::

    python3 -m venv /tmp/daam-venv
    /tmp/daam-venv/bin/pip install torch==2.13.0          # the CPU wheel; never a CUDA build
    /tmp/daam-venv/bin/pip install --no-deps daam==0.2.0  # its gradio/spacy-models extras are not needed
    /tmp/daam-venv/bin/pip install diffusers==0.21.2 transformers==4.30.2 huggingface_hub==0.25.2 \\
        accelerate==0.23.0 matplotlib spacy scipy "numpy<2" ftfy pillow
    /tmp/daam-venv/bin/python tests/reference/daam/make_reference.py

Versions it was made with: daam 0.2.0, diffusers 0.21.2, transformers 4.30.2, tokenizers 0.13.3,
huggingface_hub 0.25.2, torch 2.13.0+cpu, numpy 1.26.4, Python 3.11. It needs no network and no GPU
(it runs on the CPU in float32) and takes well under a minute. Glimpse's own venv cannot import DAAM
(diffusers 0.42 removed what DAAM 0.2.0 imports), which is why the outputs are committed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
PIPELINE_DIR = HERE / "tiny_sd15"
NPZ = HERE / "daam_reference.npz"

PROMPTS: tuple[tuple[str, int], ...] = (
    ("a red cat sitting on a blue chair", 0),
    ("an orange dog next to a green tree", 1),
    ("a photo of a giraffe in the snow", 2),
    ("a painting of a cow in the style of rembrandt", 3),
)
STEPS = 3
GUIDANCE = 7.5
QK_GAIN = 3.0
#: the 512-px expansion is stored on this sub-grid (every 16th pixel, from 7): 32x32 values per word
EXPAND_OFFSET, EXPAND_STRIDE = 7, 16
#: the image (random texture: it does not compress) is stored every 4th pixel, with its exact channel means
IMAGE_STRIDE = 4

#: whole-word tokens; the words in SPLIT become the sub-word pieces given (to exercise word = mean of pieces)
WHOLE = (
    "a", "an", "red", "cat", "on", "blue", "chair", "orange", "dog", "next", "to", "green", "tree",
    "photo", "of", "in", "the", "snow", "painting", "cow", "style",
)  # fmt: skip
SPLIT = {"sitting": ("sit", "ting</w>"), "giraffe": ("gir", "affe</w>"), "rembrandt": ("rem", "brandt</w>")}


def _pieces() -> list[str]:
    pieces = [w + "</w>" for w in WHOLE]
    for parts in SPLIT.values():
        pieces.extend(parts)
    return pieces


def _symbols(piece: str) -> list[str]:
    """A piece as BPE starts it: single characters, the last one carrying the end-of-word marker."""
    end = piece.endswith("</w>")
    chars = list(piece.removesuffix("</w>"))
    if end:
        chars[-1] += "</w>"
    return chars


def write_tokenizer(folder: Path) -> None:
    """vocab.json + merges.txt of a CLIP BPE whose merges build exactly ``_pieces()`` (longest first)."""
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in "abcdefghijklmnopqrstuvwxyz":
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    merges: list[tuple[str, str]] = []
    # longer pieces first: their merges rank before (so are applied before) any a shorter piece shares
    for piece in sorted(_pieces(), key=lambda p: (-len(p), p)):
        symbols = _symbols(piece)
        current = symbols[0]
        for nxt in symbols[1:]:
            if (current, nxt) not in merges:
                merges.append((current, nxt))
            current += nxt
            vocab.setdefault(current, len(vocab))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, indent=0))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")


def build_pipeline(folder: Path):
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tok_dir = folder / "_tokenizer_src"
    write_tokenizer(tok_dir)
    tokenizer = CLIPTokenizer(
        str(tok_dir / "vocab.json"),
        str(tok_dir / "merges.txt"),
        model_max_length=77,
        pad_token="<|endoftext|>",
    )
    for word, parts in SPLIT.items():
        got = tokenizer.tokenize(word)
        if tuple(got) != parts:
            raise RuntimeError(f"tokenizer: {word!r} -> {got}, expected {parts}")
    for word in WHOLE:
        if tokenizer.tokenize(word) != [word + "</w>"]:
            raise RuntimeError(f"tokenizer: {word!r} -> {tokenizer.tokenize(word)}, expected one token")

    torch.manual_seed(0)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer.get_vocab()),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=77,  # DAAM records only layers whose text length is 77
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=64,  # 64x64 latent, 512-px images: DAAM's 64x64 grid and its factor-8 skip apply
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D",) * 4,
        up_block_types=("CrossAttnUpBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        cross_attention_dim=32,
        # diffusers' legacy name for the number of heads, per level: one head at 64x64 keeps the 4096-token
        # self-attention cheap on a CPU; the lower levels have several heads, so the per-head clamp matters
        attention_head_dim=(1, 2, 4, 4),
        norm_num_groups=4,
    )
    with torch.no_grad():
        for name, module in unet.named_modules():
            if name.endswith("attn2"):
                module.to_q.weight.mul_(QK_GAIN)
                module.to_k.weight.mul_(QK_GAIN)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(4, 4, 4, 4),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=2,
        sample_size=512,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(folder), safe_serialization=True)
    for path in tok_dir.iterdir():
        path.unlink()
    tok_dir.rmdir()


def run_daam(folder: Path) -> dict[str, np.ndarray]:
    import daam
    from diffusers import StableDiffusionPipeline
    from PIL import Image

    pipe = StableDiffusionPipeline.from_pretrained(str(folder), safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    arrays: dict[str, np.ndarray] = {}
    meta = {
        "daam": daam.__version__,
        "steps": STEPS,
        "guidance": GUIDANCE,
        "prompts": [],
        "expand_offset": EXPAND_OFFSET,
        "expand_stride": EXPAND_STRIDE,
        "image_stride": IMAGE_STRIDE,
    }
    for p, (prompt, seed) in enumerate(PROMPTS):
        generator = torch.Generator(device="cpu").manual_seed(seed)
        with torch.no_grad(), daam.trace(pipe) as tc:
            out = pipe(
                prompt,
                num_inference_steps=STEPS,
                guidance_scale=GUIDANCE,
                generator=generator,
                output_type="np",
            )
            global_map = tc.compute_global_heat_map()  # raw: normalize=False is DAAM's default
            image = (np.clip(out.images[0], 0.0, 1.0) * 255).round().astype(np.uint8)
            pil = Image.fromarray(image)
            words = list(dict.fromkeys(prompt.split()))  # distinct words, in order
            values, expanded = [], []
            for word in words:
                word_map = global_map.compute_word_heat_map(word)
                values.append(word_map.value.float().numpy())
                full = word_map.expand_as(pil, absolute=True).numpy()
                expanded.append(full[EXPAND_OFFSET::EXPAND_STRIDE, EXPAND_OFFSET::EXPAND_STRIDE])
        arrays[f"p{p}_token_maps"] = global_map.heat_maps.float().numpy()
        arrays[f"p{p}_word_maps"] = np.stack(values).astype(np.float32)
        arrays[f"p{p}_word_maps_expanded"] = np.stack(expanded).astype(np.float32)
        arrays[f"p{p}_image"] = image[::IMAGE_STRIDE, ::IMAGE_STRIDE]
        meta["prompts"].append(
            {
                "prompt": prompt,
                "seed": seed,
                "words": words,
                "tokens": pipe.tokenizer.tokenize(prompt),
                "image_size": list(image.shape[:2]),
                "image_channel_means": image.reshape(-1, 3).mean(0).tolist(),
                "layers": list(tc.layer_names),
            }
        )
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


def main() -> None:
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    build_pipeline(PIPELINE_DIR)
    arrays = run_daam(PIPELINE_DIR)
    np.savez_compressed(NPZ, **arrays)


if __name__ == "__main__":
    main()
