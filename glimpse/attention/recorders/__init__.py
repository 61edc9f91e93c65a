"""One recorder per attention architecture; each stands in for a layer's processor while a tracer is installed.

* :mod:`.cross`: cross-attention (UNet, PixArt ``attn2``);
* :mod:`.sd3`: SD3 joint attention ([image, text]);
* :mod:`.flux`: Flux joint attention ([text, image], RoPE);
* :mod:`.common`: what they share (token grids, head views, the text-block maths).
"""
