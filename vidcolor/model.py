"""The colorization network.

Input: one RGB image at the working resolution, (B, 3, H, W) in [0, 1]: either a
gray frame (R = G = B) or the frame's lightness joined with a colour hint (the
previous frame's colorization warped onto this frame, gray where there is none).

Output: logits over Q quantized ab bins at 1/4 of the input size,
(B, Q, H/4, W/4), plus a direct ab regression (B, 2, H/4, W/4) from a second
head. `decode` turns them into ab (annealed mean at temperature T, Zhang et
al.) and a per-pixel confidence; the caller upsamples ab and joins it with its
own full-resolution lightness.

Shape: a small U-Net. A strided encoder (1/2 .. 1/16) of dense residual
blocks (dilated at 1/16), a global-context path (pooled 1/16 features -> MLP -> per-channel scale
and shift, after Iizuka et al.) so that a scene's colours agree, and a decoder
back to 1/4 with skip connections. It imports nothing from video or I/O code.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .color import gamut_bins, rgb_to_lab
from .decoding import annealed_mean, bin_rgb_table, choose_prior_correction, corrected_logits


@dataclass(frozen=True)
class ModelConfig:
    widths: tuple[int, ...] = (32, 64, 128, 256)  # channels at 1/2, 1/4, 1/8, 1/16
    blocks: tuple[int, ...] = (1, 2, 2)  # residual blocks at 1/4, 1/8, 1/16
    global_dim: int = 256
    bin_grid: float = 10.0  # ab quantization step (Zhang: 10)
    temperature: float = 0.38  # annealed-mean default (Zhang: 0.38)
    # How much of the class rebalancing to undo when decoding: 0 = Zhang's
    # (vivid, biased to rare colours), 1 = the unbiased posterior p / w.
    prior_correction: float = 0.0
    # > 0: choose the prior correction per image instead, trading expected PSNR
    # against colourfulness at this rate (decoding.choose_prior_correction).
    colour_weight: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**fields)


class ConvBN(nn.Module):
    """conv -> batch norm -> optional ReLU; `fuse()` folds the norm into the conv.

    Dense 3x3 convolutions: on CPUs (oneDNN, bf16) they run near peak, while
    depthwise/pointwise stacks pay a per-op cost that dominates at these sizes.
    """

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1, act: bool = True):
        super().__init__()
        pad = dilation * (k // 2)
        self.conv = nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(cout)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x, inplace=True) if self.act else x

    def fuse(self) -> None:
        if isinstance(self.bn, nn.BatchNorm2d):
            self.conv = fuse_conv_bn_eval(self.conv, self.bn)
            self.bn = nn.Identity()


class ResBlock(nn.Module):
    def __init__(self, c: int, dilation: int = 1):
        super().__init__()
        self.a = ConvBN(c, c, dilation=dilation)
        self.b = ConvBN(c, c, dilation=dilation, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.b(self.a(x)), inplace=True)


class GlobalContext(nn.Module):
    """Pooled scene feature -> per-channel scale and shift of the deepest map."""

    def __init__(self, c: int, dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2 * c, dim), nn.ReLU(inplace=True), nn.Linear(dim, 2 * c))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat((x.mean(dim=(2, 3)), x.amax(dim=(2, 3))), dim=1)
        scale, shift = self.mlp(pooled).chunk(2, dim=1)
        return F.relu(x * (1 + scale[:, :, None, None]) + shift[:, :, None, None])


class Up(nn.Module):
    """Upsample x2, reduce channels, add the encoder's skip, then one conv."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.reduce = ConvBN(cin, cout, k=1, act=False)
        self.conv = ConvBN(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.reduce(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(F.relu(x + skip))


class ColorNet(nn.Module):
    # Input sides must be multiples of this (four stride-2 steps).
    multiple = 16

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        w, nb = cfg.widths, cfg.blocks
        self.register_buffer("bins", gamut_bins(cfg.bin_grid))  # (Q, 2) ab centres
        # (Q,) the class-rebalancing weights w the training loss used; decode divides them out.
        self.register_buffer("class_weights", torch.ones(self.bins.shape[0]))
        # (levels, Q, 3) the bins' RGB by lightness, for the per-image colour choice: built here once, not per
        # frame; derived from the bins, so not saved with the weights.
        self.register_buffer("bin_rgb", bin_rgb_table(self.bins), persistent=False)
        self.stem = nn.Sequential(ConvBN(3, w[0], stride=2), ConvBN(w[0], w[1], stride=2))
        self.s4 = nn.Sequential(*[ResBlock(w[1]) for _ in range(nb[0])])
        self.s8 = nn.Sequential(ConvBN(w[1], w[2], stride=2), *[ResBlock(w[2]) for _ in range(nb[1])])
        dil = [1, 2, 4, 1, 2, 4]
        self.s16 = nn.Sequential(ConvBN(w[2], w[3], stride=2), *[ResBlock(w[3], dil[i]) for i in range(nb[2])])
        self.context = GlobalContext(w[3], cfg.global_dim)
        self.up8 = Up(w[3], w[2])
        self.up4 = Up(w[2], w[1])
        self.logits = nn.Conv2d(w[1], self.bins.shape[0], 1)
        self.regress = nn.Conv2d(w[1], 2, 1)

    @property
    def num_bins(self) -> int:
        return self.bins.shape[0]

    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """rgb (B, 3, H, W) in [0, 1], H and W multiples of 16 ->
        logits (B, Q, H/4, W/4) and ab regression (B, 2, H/4, W/4) in Lab units."""
        lab = rgb_to_lab(rgb)
        x = torch.cat((lab[:, :1] / 50.0 - 1.0, lab[:, 1:] / 64.0), dim=1)
        x = x.contiguous(memory_format=torch.channels_last) if rgb.is_contiguous(memory_format=torch.channels_last) else x
        f4 = self.s4(self.stem(x))
        f8 = self.s8(f4)
        f16 = self.context(self.s16(f8))
        x = self.up4(self.up8(f16, f8), f4)
        return self.logits(x), self.regress(x) * 64.0

    def fuse(self) -> ColorNet:
        """Fold batch norms into convolutions (eval only): fewer ops per frame."""
        self.eval()
        for m in self.modules():
            if isinstance(m, ConvBN):
                m.fuse()
        return self

    def decode(
        self, logits: torch.Tensor, temperature: float | None = None, prior_correction: float | torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """logits (B, Q, h, w) -> ab (B, 2, h, w) by annealed mean, and confidence (B, 1, h, w) in [0, 1].

        prior_correction beta (a float, or one per image (B,)): how much of the class rebalancing to
        undo first (decoding.annealed_mean). Confidence is 1 - normalized entropy of the untempered
        distribution: 1 where the network is sure of one colour, 0 where it has no idea.
        None takes the model's own fixed setting for either argument.
        """
        t = self.cfg.temperature if temperature is None else temperature
        beta = self.cfg.prior_correction if prior_correction is None else prior_correction
        corrected = corrected_logits(logits, self.log_class_weights(), beta)
        ab = annealed_mean(corrected, self.bins.float(), t)
        logp = torch.log_softmax(corrected, dim=1)
        entropy = -(logp.exp() * logp).sum(1, keepdim=True)
        return ab, 1.0 - entropy / math.log(self.num_bins)

    def log_class_weights(self) -> torch.Tensor:
        return torch.log(self.class_weights.float())

    def choose_prior_correction(self, logits: torch.Tensor, L: torch.Tensor, temperature: float | None = None,
                                colour_weight: float | None = None) -> torch.Tensor:
        """logits (B, Q, h, w), L (B, 1, H, W) the input's lightness -> beta per image (B,) (decoding.py)."""
        t = self.cfg.temperature if temperature is None else temperature
        cw = self.cfg.colour_weight if colour_weight is None else colour_weight
        return choose_prior_correction(logits, self.log_class_weights(), self.bins.float(), self.bin_rgb, L, t, cw)

    def colorize_ab(self, rgb: torch.Tensor, temperature: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """rgb (B, 3, H, W) of any size -> ab (B, 2, ceil(H/4), ceil(W/4)) and confidence (B, 1, same).

        Pads to a multiple of 16 with edge replication and crops the result.
        """
        h, w = rgb.shape[-2:]
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            rgb = F.pad(rgb, (0, pw, 0, ph), mode="replicate")
        logits, _ = self(rgb)
        beta = None
        if self.cfg.colour_weight > 0:
            # The lightness at the logits' size is all the choice needs (forward's own Lab is not kept).
            with torch.autocast(rgb.device.type, enabled=False):
                small = F.interpolate(rgb.float(), size=logits.shape[-2:], mode="area")
                beta = self.choose_prior_correction(logits, rgb_to_lab(small)[:, :1], temperature)
        ab, conf = self.decode(logits, temperature, beta)
        oh, ow = math.ceil(h / 4), math.ceil(w / 4)
        return ab[..., :oh, :ow], conf[..., :oh, :ow]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
