"""Benchmark: cost of cross-attention tracing, in one run, as ratios against untraced generation.

1. The embedded shapes models, 32x32 with CFG: ``pipe(prompt)`` vs ``generate_with_attention`` with its defaults.
   ``shapes-t2i`` (UNet, DDIM): DAAM's layer set, the down- and up-block attn2 layers, heads averaged per step as
   float16 on the CPU, plus each head's float32 sum over the steps; ``shapes-mmdit`` (row ``mmdit``: SD3 MMDiT,
   flow matching): every joint block's image→text block of the joint softmax.
2. Small PixArt, SD3 and Flux transformer configs (random weights, no download) driven through a denoising
   loop (CFG batches; Flux: one guidance-distilled branch): the denoiser alone vs inside
   :class:`AttentionTracer` (on the CPU the image→text block comes from the log-sum-exp of the layer's own
   fused SDPA call, never the full matrix; :mod:`glimpse.attention.recorders.common`).

Runs alternate, untraced and traced, in an order that flips every repeat so that neither side always runs
second (on a shared VM the two slots of a pair differ even when both run the same code); the median per
side is reported, as process CPU time (single thread, so other processes on a shared machine distort it
less) and as wall time, the median of the paired ratios (each traced run against the untraced run of
its repeat, so that slow drifts in a shared machine's load cancel), and the ratio of the fastest runs
(``overhead_min``: interference only ever adds time, so the minimum is the estimate of the code's own cost
that a noisy shared machine disturbs least, as ``timeit`` advises).
Memory: bytes of the trace vs the attention matrices a naive recorder would keep (all attention layers,
every sample of the batch, all heads, float32).

    .venv/bin/python -m bench.attention [--repeat 7] [--steps 25] [--threads 1] [--only embedded,mmdit,pixart,sd3,flux]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from glimpse.attention import AttentionTracer, generate_with_attention
from models.diffusion import load_pipeline

PROMPT = "a red circle to the left of a blue square"
ROWS = ("embedded", "mmdit", "pixart", "sd3", "flux")
#: the rows that time a committed model: row -> (model id, what the report calls it)
EMBEDDED_ROWS = {
    "embedded": ("shapes-t2i", "shapes-t2i (embedded UNet, 32x32)"),
    "mmdit": ("shapes-mmdit", "shapes-mmdit (embedded SD3 MMDiT, 32x32)"),
}


def _alternate(plain, traced, repeat: int) -> dict[str, float]:
    """Median CPU seconds (process time, robust to other processes on a shared machine) and wall seconds."""
    plain(), traced()  # warm-up
    cpu: dict[str, list[float]] = {"plain": [], "traced": []}
    wall: dict[str, list[float]] = {"plain": [], "traced": []}
    pair = (("plain", plain), ("traced", traced))
    for i in range(repeat):
        # the order flips every repeat, so that the slot a run has in its pair does not bias one side
        for name, fn in pair if i % 2 == 0 else pair[::-1]:
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - w0)
    out = {f"{k}_cpu_s": round(statistics.median(v), 4) for k, v in cpu.items()}
    out.update({f"{k}_wall_s": round(statistics.median(v), 4) for k, v in wall.items()})
    out["overhead"] = round(out["traced_cpu_s"] / out["plain_cpu_s"] - 1, 4)
    out["overhead_wall"] = round(out["traced_wall_s"] / out["plain_wall_s"] - 1, 4)
    # each traced run against the plain run of the same repeat: slow drifts of a shared machine's load cancel
    out["overhead_paired"] = round(statistics.median(t / p for p, t in zip(cpu["plain"], cpu["traced"])) - 1, 4)
    # the fastest run of each side: other processes only ever add time
    out["overhead_min"] = round(min(cpu["traced"]) / min(cpu["plain"]) - 1, 4)
    return out


def _full_matrices_bytes(calls: list[tuple[int, int, int]], steps: int, batch: int = 2) -> int:
    """float32 bytes of every attention matrix of one step (a CFG batch: 2), times steps; calls: (heads, q, k)."""
    return sum(batch * h * q * k * 4 for h, q, k in calls) * steps


def _attention_shapes(model: torch.nn.Module, run) -> list[tuple[int, int, int]]:
    """(heads, queries, keys) of every attention call of one denoiser pass."""
    shapes, handles = [], []
    for module in model.modules():
        if hasattr(module, "processor") and hasattr(module, "heads"):

            def hook(mod, args, kwargs, out=None):
                x = args[0] if args else kwargs["hidden_states"]
                c = kwargs.get("encoder_hidden_states")
                n = x.shape[1] if x.ndim == 3 else x.shape[2] * x.shape[3]
                if c is None:
                    shapes.append((mod.heads, n, n))
                elif getattr(mod, "add_k_proj", None) is not None:  # joint: [image, text] both ways
                    shapes.append((mod.heads, n + c.shape[1], n + c.shape[1]))
                else:
                    shapes.append((mod.heads, n, c.shape[1]))

            handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return shapes


def bench_embedded(steps: int, repeat: int, row: str = "embedded") -> dict:
    model_id, label = EMBEDDED_ROWS[row]
    bundle = load_pipeline(model_id, device="cpu")
    pipe = bundle.pipe

    def plain():
        pipe(PROMPT, num_inference_steps=steps, guidance_scale=4.0, generator=torch.Generator().manual_seed(0))

    result = {}

    def traced():
        result["r"] = generate_with_attention(bundle, PROMPT, seed=0, steps=steps)

    timing = _alternate(plain, traced, repeat)
    trace = result["r"].trace
    shapes = _attention_shapes(
        bundle.denoiser,
        lambda: pipe(PROMPT, num_inference_steps=1, guidance_scale=4.0, generator=torch.Generator().manual_seed(0)),
    )
    full = _full_matrices_bytes(shapes, steps)
    return {
        "model": label,
        "steps": steps,
        **timing,
        "trace_bytes": trace.nbytes,
        "formula_bytes": sum(
            len(trace.timesteps) * len(trace.tokens) * m.shape[-2] * m.shape[-1] * 2 for m in trace.layer_maps
        ),
        "full_attention_bytes": full,
        "memory_ratio": round(trace.nbytes / full, 6),
    }


def _tiny_transformer(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "flux":
        from diffusers import FluxTransformer2DModel

        return FluxTransformer2DModel(
            patch_size=1,
            in_channels=16,
            num_layers=2,
            num_single_layers=2,
            attention_head_dim=32,
            num_attention_heads=4,
            joint_attention_dim=64,
            pooled_projection_dim=32,
            axes_dims_rope=(8, 12, 12),
        ).eval()
    if kind == "pixart":
        from diffusers import PixArtTransformer2DModel

        return PixArtTransformer2DModel(
            num_attention_heads=4,
            attention_head_dim=32,
            in_channels=4,
            out_channels=8,
            num_layers=4,
            cross_attention_dim=128,
            sample_size=32,
            patch_size=2,
            caption_channels=64,
            use_additional_conditions=False,
        ).eval()
    from diffusers import SD3Transformer2DModel

    return SD3Transformer2DModel(
        sample_size=32,
        patch_size=2,
        in_channels=4,
        num_layers=4,
        attention_head_dim=32,
        num_attention_heads=4,
        joint_attention_dim=64,
        caption_projection_dim=128,
        pooled_projection_dim=32,
        out_channels=4,
        qk_norm="rms_norm",
    ).eval()


def bench_transformer(kind: str, steps: int, repeat: int, text_len: int = 77, kept: int = 12) -> dict:
    model = _tiny_transformer(kind)
    g = torch.Generator().manual_seed(0)
    flux = kind == "flux"
    batch = 1 if flux else 2  # Flux is guidance-distilled: one branch, no CFG halves
    text = torch.randn(batch, text_len, 64, generator=g)
    latents = torch.randn(1, 4, 32, 32, generator=g)
    if kind == "pixart":
        extra = {"added_cond_kwargs": {"resolution": None, "aspect_ratio": None}}
    elif flux:
        ids = torch.zeros(16, 16, 3)
        ids[..., 1], ids[..., 2] = torch.arange(16)[:, None], torch.arange(16)[None, :]
        extra = {"pooled_projections": torch.randn(1, 32, generator=g), "img_ids": ids.reshape(-1, 3)}
        extra["txt_ids"] = torch.zeros(text_len, 3)
    else:
        extra = {"pooled_projections": torch.randn(2, 32, generator=g)}
    timesteps = torch.linspace(999, 0, steps).long()

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if flux:  # 2x2-packed latents: 16x16 tokens of 16 channels
            packed = x.reshape(1, 4, 16, 2, 16, 2).permute(0, 2, 4, 1, 3, 5).reshape(1, 256, 16)
            out = model(packed, encoder_hidden_states=text, timestep=t.float()[None] / 1000, return_dict=False, **extra)
            return out[0].reshape(1, 16, 16, 4, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(1, 4, 32, 32)
        out = model(torch.cat([x, x]), encoder_hidden_states=text, timestep=t.repeat(2), return_dict=False, **extra)
        u, c = out[0][:, :4].chunk(2)
        return u + 4.0 * (c - u)

    @torch.no_grad()
    def loop():
        x = latents
        for t in timesteps:
            x = x - 0.02 * denoise(x, t)
        return x

    holder = {}

    def traced():
        options = {"token_positions": range(kept), "image_hw": (1, 1), "cfg": not flux, "text_len": text_len}
        with AttentionTracer(model, kind, **options) as tracer:
            loop()
        holder["maps"] = tracer.result()[1]

    timing = _alternate(loop, traced, repeat)
    trace_bytes = sum(m.nbytes for m in holder["maps"])
    shapes = _attention_shapes(model, torch.no_grad()(lambda: denoise(latents, timesteps[0])))
    full = _full_matrices_bytes(shapes, steps, batch)
    return {
        "model": f"tiny {kind} (4 layers, 4x32 heads, 16x16 tokens, {text_len} text tokens, {kept} kept)",
        "steps": steps,
        **timing,
        "trace_bytes": trace_bytes,
        "formula_bytes": steps * kept * sum(m.shape[-2] * m.shape[-1] for m in holder["maps"]) * 2,
        "full_attention_bytes": full,
        "memory_ratio": round(trace_bytes / full, 6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default=",".join(ROWS), help=f"comma-separated rows among {', '.join(ROWS)}")
    args = parser.parse_args()
    only = [r.strip() for r in args.only.split(",") if r.strip()]
    unknown = sorted(set(only) - set(ROWS))
    if unknown:
        parser.error(f"--only: unknown {unknown}; known: {', '.join(ROWS)}")
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    rows = [
        bench_embedded(args.steps, args.repeat, row)
        if row in EMBEDDED_ROWS
        else bench_transformer(row, min(args.steps, 10), args.repeat)
        for row in only
    ]
    for r in rows:
        print(
            f"{r['model']}: CPU time plain {r['plain_cpu_s']:.3f}s, traced {r['traced_cpu_s']:.3f}s, "
            f"overhead {r['overhead']:+.1%} (paired {r['overhead_paired']:+.1%}, fastest {r['overhead_min']:+.1%}, "
            f"wall {r['overhead_wall']:+.1%}); "
            f"trace {r['trace_bytes'] / 1024:.1f} KiB (formula {r['formula_bytes'] / 1024:.1f} KiB) vs full attention "
            f"{r['full_attention_bytes'] / 2**20:.1f} MiB (ratio {r['memory_ratio']:.2e})"
        )
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
