"""MobileNetV2 (width 1.0), the ImageNet-pretrained encoder of the colorization network.

Laid out exactly as Google's TFLite MobileNetV2 1.0 (Sandler et al. 2018) so that
`vidcolor.train.pretrained` can fill it from that file convolution by convolution:
batch norms are folded into each convolution's bias, activations are ReLU6, and
padding is TensorFlow's "SAME" (for stride 2 the extra row and column go at the
bottom and right), which matters for features pretrained that way.

Input: (B, 3, H, W) RGB scaled to [-1, 1] (x / 127.5 - 1 for 8-bit x), as the
classifier was trained. `features` returns the maps at strides 4, 8, 16 and 32
(24, 32, 96 and 320 channels) and the 1,280-channel map after the last 1x1
convolution (stride 32), which is what the classifier pools.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# (expansion t, channels c, repeats n, first stride s): the paper's Table 2.
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
LAST_CHANNELS = 1280
IMAGENET_CLASSES = 1001  # index 0 = background, as in the TFLite file


class SameConv(nn.Conv2d):
    """A convolution with TensorFlow "SAME" padding (asymmetric at stride 2), bias on, and ReLU6 or none."""

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, relu6: bool = True):
        super().__init__(cin, cout, k, stride, padding=0, groups=groups, bias=True)
        self.relu6 = relu6
        # Computes in fp32 whatever autocast says, and keeps fp32 weights when the network is cast.
        self.precise = False

    def _apply(self, fn, recurse: bool = True):
        before = (self.weight.data, self.bias.data)
        super()._apply(fn, recurse)
        if self.precise:
            # Cast to bf16 and back, the weights would stay rounded: take the fp32 ones, moved.
            for p, old in zip((self.weight, self.bias), before, strict=True):
                if old.dtype == torch.float32 and p.dtype != torch.float32:
                    p.data = old.to(p.device)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.precise and (x.dtype != torch.float32 or torch.is_autocast_enabled(x.device.type)):
            with torch.autocast(x.device.type, enabled=False):
                return self._forward(x.float())
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        if k == 1:
            x = conv1x1(self, x)
        elif s == 1:
            # SAME at stride 1 is symmetric: the convolution pads, without F.pad's copy of the map.
            x = F.conv2d(x, self.weight, self.bias, 1, k // 2, 1, self.groups)
        else:
            pad_h = _same_pad(x.shape[-2], k, s)
            pad_w = _same_pad(x.shape[-1], k, s)
            x = super().forward(F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)))
        # In place: the convolution's output is not needed again (its backward needs only the input).
        return F.relu6(x, inplace=True) if self.relu6 else x


def conv1x1(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """conv (a 1x1, stride-1, ungrouped convolution) applied to x (B, C, H, W).

    On a channels_last map it is one matrix product over (B*H*W, C), in and out as views: torch sends
    small batch-1 maps to its slow native convolution, which converts the layout both ways (the network
    took 35 ms a 256x160 frame that way, 24 ms this way; AVX2, fp32, 2 threads).
    """
    if not x.is_contiguous(memory_format=torch.channels_last):
        return F.conv2d(x, conv.weight, conv.bias)
    return F.linear(x.permute(0, 2, 3, 1), conv.weight.flatten(1), conv.bias).permute(0, 3, 1, 2)


def _same_pad(n: int, k: int, s: int) -> int:
    """TFLite's SAME padding. Integer arithmetic only: an exported graph (int8.py) then computes it from
    its input's size (math.ceil would freeze the size it was traced at)."""
    return max(((n + s - 1) // s - 1) * s + k - n, 0)


class InvertedResidual(nn.Module):
    """1x1 expand (ReLU6) -> 3x3 depthwise (ReLU6) -> 1x1 project (linear), + input when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        layers: list[nn.Module] = [SameConv(cin, mid)] if expand != 1 else []
        layers += [SameConv(mid, mid, 3, stride, groups=mid), SameConv(mid, cout, relu6=False)]
        self.layers = nn.Sequential(*layers)
        self.stride = stride
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.layers(x)
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    """The convolutions in the TFLite file's order; `classifier=False` leaves out the ImageNet head."""

    def __init__(self, classifier: bool = False):
        super().__init__()
        self.stem = SameConv(3, 32, 3, 2)
        blocks, cin = [], 32
        # Stage ends: the block after which each feature map is taken (strides 4, 8, 16, 32).
        self.taps: list[int] = []
        for t, c, n, s in SETTINGS:
            for i in range(n):
                blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
            if c in (24, 32, 96, 320):
                self.taps.append(len(blocks) - 1)
        # The stride-2 blocks after strides 4, 8 and 16: their expansion sees the map before it shrinks.
        self.blocks = nn.ModuleList(blocks)
        # The first depthwise convolution has folded batch-norm weights up to 56 (|w| summing to 432 over a
        # 3x3 window). In bf16 its rounding moved the held-out clips' gain over gray from +0.72 to +0.52 dB,
        # the worst clip from -1.40 to -1.84 (shipped weights, a CPU with AVX512-BF16); in fp32, with the
        # rest in bf16, +0.72 and -1.39, for 0.6 % of the pass's time (18.13 against 18.01 ms, 256x144, 1 thread).
        blocks[0].layers[0].precise = True
        self.last = SameConv(cin, LAST_CHANNELS)
        self.classifier = nn.Conv2d(LAST_CHANNELS, IMAGENET_CLASSES, 1) if classifier else None

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x (B, 3, H, W) in [-1, 1] -> [f4 (24 ch), f8 (32), f16 (96), f32 (320), top (1280, stride 32)]."""
        x = self.stem(x)
        out = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.taps:
                out.append(x)
        out.append(self.last(x))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) in [-1, 1] -> ImageNet logits (B, 1001); needs classifier=True."""
        if self.classifier is None:
            raise RuntimeError("built without the ImageNet classifier")
        top = self.features(x)[-1]
        return self.classifier(top.mean(dim=(2, 3), keepdim=True)).flatten(1)
