"""Occlusion (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014), via
Captum: slide a black window over the image; each pixel gets the average score drop
``S(x) − S(x with the window blacked out)`` over the windows covering it. Windows run in batches.
"""

from __future__ import annotations

from captum.attr import Occlusion as CaptumOcclusion

from glimpse.saliency.base import Cost, MethodInfo, windows
from glimpse.saliency.contract import Attribution, Method
from glimpse.saliency.methods._common import quiet_captum


class Occlusion(Method):
    info = MethodInfo(
        name="occlusion",
        label="Occlusion",
        family="perturbation",
        params={"window": 32, "stride": 16},
        explanation="Covers the image with a black square, position by position, and records how much the class\n"
        "score drops: model-agnostic, slow. Window and stride in input pixels, scaled to the input (32, 16 at 224).",
        citation="Zeiler & Fergus, Visualizing and Understanding Convolutional Networks, ECCV 2014",
        slow=True,
        units="ΔS per occluded window",
    )

    def defaults(self, input_size=None):
        # 32 and 16 are for a 224-px input; on a 32-px shapes scene a 32-px window would black out the whole
        # image at every position and give a constant map, so both scale with the input's shorter side
        if input_size is None:
            return dict(self.info.params)
        side = min(int(input_size[0]), int(input_size[1]))
        window = max(1, min(side, round(self.info.params["window"] * side / 224)))
        return {"window": window, "stride": max(1, round(self.info.params["stride"] * side / 224))}

    def units(self, params):
        # A window's score drop, averaged over the windows covering the pixel: the unit is the window.
        return f"ΔS per {int(params['window'])}×{int(params['window'])} window"

    def cost(self, params, where):
        h_in, w_in = where.input_size
        w, s = _check(params, h_in, w_in)
        return Cost(forward=1 + windows(h_in, w, s) * windows(w_in, w, s), backward=0)  # S(x), then each window

    def attribute(self, ctx, x, params):
        w, s = _check(params, *x.shape[-2:])
        with quiet_captum():
            attr = CaptumOcclusion(ctx.score).attribute(
                x,
                sliding_window_shapes=(x.shape[1], w, w),
                strides=(x.shape[1], s, s),
                baselines=ctx.black(x),
                target=0,
                perturbations_per_eval=ctx.batch_size,
            )
        # The window spans all channels, so the three channel attributions are equal; keep one.
        return Attribution(attr.detach()[:, 0])


def _check(params: dict, h_in: int, w_in: int) -> tuple[int, int]:
    w, s = int(params["window"]), int(params["stride"])
    if not 1 <= w <= min(h_in, w_in):
        raise ValueError(f"params: occlusion.window must be in 1..{min(h_in, w_in)}, got {w}")
    if s < 1:
        raise ValueError(f"params: occlusion.stride must be >= 1, got {s}")
    return w, s
