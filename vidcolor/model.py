"""The colorization network.

Input: one RGB image at the working resolution, (B, 3, H, W) in [0, 1]: either a
gray frame (R = G = B) or the frame's lightness joined with a colour hint (the
previous frame's colorization warped onto this frame, gray where there is none).

Output: logits over Q quantized ab bins at 1/4 of the input size,
(B, Q, H/4, W/4), plus a direct ab regression (B, 2, H/4, W/4) from a second
head. `colors` (decoding.ColorDecoder) turns the logits into ab (annealed mean,
Zhang et al.) and a per-pixel confidence; the caller upsamples ab and joins it with its
own full-resolution lightness.

Shape: a U-Net on an ImageNet-pretrained MobileNetV2 encoder (`backbone.py`),
which knows objects (faces, clothes, animals) that a network trained from scratch
on a few thousand photos does not. The decoder climbs from stride 32 to 4, adding
each encoder stage through a 1x1 lateral; a global-context path (the pooled
1,280-channel classifier feature -> MLP -> per-channel scale and shift of the
deepest decoder map, after Iizuka et al.) makes a scene's colours agree. With
`ModelConfig.hint_gate` (in the shipped weights) the input's own colours also enter the outputs
directly, as far as a per-pixel gate trusts them (HintGate).
It imports nothing from video or I/O code.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .backbone import LAST_CHANNELS, MobileNetV2, conv1x1
from .decoding import ColorDecoder
from .lab import rgb_to_lab
from .record import DecodeConfig, ModelConfig
from .reference import Match

# Channels of the encoder's maps at strides 4, 8, 16, 32 (backbone.MobileNetV2.features).
ENCODER_CHANNELS = (24, 32, 96, 320)


class ConvBN(nn.Module):
    """conv -> batch norm -> optional ReLU; `fuse()` folds the norm into the conv."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1, act: bool = True):
        super().__init__()
        pad = dilation * (k // 2)
        self.conv = nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(cout)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(conv1x1(self.conv, x) if self.conv.kernel_size == (1, 1) else self.conv(x))
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
    """The pooled classifier feature (B, cin) -> per-channel scale and shift of a map with c channels."""

    def __init__(self, cin: int, c: int, dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(cin, dim), nn.ReLU(inplace=True), nn.Linear(dim, 2 * c))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, x: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        scale, shift = self.mlp(pooled).chunk(2, dim=1)
        return F.relu(x * (1 + scale[:, :, None, None]) + shift[:, :, None, None])


class Up(nn.Module):
    """Upsample x2, reduce channels, add the encoder's map through a 1x1 lateral, then one 3x3 conv."""

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.reduce = ConvBN(cin, cout, k=1, act=False)
        self.lateral = ConvBN(cskip, cout, k=1, act=False)
        self.conv = ConvBN(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """x (B, cin, h, w), skip (B, cskip, 2h, 2w) -> (B, cout, 2h, 2w)."""
        # A scale, not skip's size: an exported graph (int8.py) then takes inputs of any size.
        x = F.interpolate(self.reduce(x), scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.conv(F.relu(x + self.lateral(skip)))


class HintGate(nn.Module):
    """How far to follow the colours the input carries (a hint), pixel by pixel, at stride 4.

    The network's input colours reach the decoder only through ImageNet features: given the truth itself
    as its hint the network without this gains +6.8 dB, where copying it would give +20, and a learned
    residual path from the hint into the decoder did not learn to copy either (docs/experiments.md).
    So the hint is added in the output's own terms: the class distribution becomes a mixture of the
    network's and a Gaussian of `sigma` Lab units around the hint, weighted by a gate the network predicts
    from its features and the hint; the regression moves toward the hint by a second gate. Holes in the
    hint (occlusions, a keyframe's colours carried by flow) are filled with the colours around them
    (`spread`): copying the evaluation's hint with its holes so filled gains +8.0 dB over gray, where the
    gated network without the fill gained +7.0. Both gates are multiplied by how much of the cell carries
    colour, or how near colour is, so a gray input gets exactly the network without the gate.
    """

    GAIN = 10.0  # the gates' logits are 10x the convolution: Adam moves them 10x faster than the decoder's
    FAR = -50.0  # the hint's Gaussian, in log units, floored here (mix)

    def __init__(self, c: int, sigma: float):
        super().__init__()
        self.sigma = sigma
        self.gate = nn.Conv2d(c + 4, 2, 3, padding=1)
        nn.init.zeros_(self.gate.weight)
        # x GAIN: a new gate starts by trusting a hint a little, the class mixture at sigmoid(-1) = 0.27 of
        # the hint's, the regression at sigmoid(-4) = 0.02 of the way to it.
        with torch.no_grad():
            self.gate.bias.copy_(torch.tensor([-0.1, -0.4]))
        # Added to both gates' bias for a hint of true colours (a keyframe's, carried by flow), not for the
        # network's own guesses fed back: training saw both kinds and cannot tell them apart, so its gates
        # follow a true hint only partly. Set after training (train.calibrate); 0 in a new network.
        self.register_buffer("trusted_offset", torch.zeros(()))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Weights written before the offset existed have none: 0, the gates as trained.
        state_dict.setdefault(prefix + "trusted_offset", torch.zeros(()))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(
        self,
        x: torch.Tensor,
        rgb: torch.Tensor,
        logits: torch.Tensor,
        reg: torch.Tensor,
        bins: torch.Tensor,
        trusted: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, c, h, w) decoder features; rgb (B, 3, 4h, 4w) the input in [0, 1]; logits (B, Q, h, w);
        reg (B, 2, h, w) Lab units; bins (Q, 2); trusted: the hint is true colours (gates opened by
        trusted_offset) -> logits and reg (fp32) moved toward the hint, and how far reg follows it
        (B, 1, h, w) in [0, 1] (fp32; 0 for a gray input)."""
        if float((rgb.amax(1) - rgb.amin(1)).max()) < 0.5 / 255:
            # A gray input (every frame without feedback or a keyframe): no cell carries colour, both gates
            # are 0, and the Lab and distances below would cost the forward pass about a fifth more.
            return logits, reg, torch.zeros_like(reg[:, :1], dtype=torch.float32)
        lab = rgb_to_lab(rgb)  # fp32 whatever autocast says: a hint's chroma may be a few Lab units
        colored = F.avg_pool2d((lab[:, 1:].abs().sum(1, keepdim=True) > HINT_CHROMA).float(), 4)  # (B, 1, h, w)
        lab4 = F.avg_pool2d(lab, 4)  # (B, 3, h, w)
        hint, trust = spread(lab4[:, 1:], colored, lab4[:, :1])
        feats = torch.cat((x.float(), lab4[:, :1] / 100.0, hint / 64.0, trust), 1)
        bias = self.gate.bias.float() + (self.trusted_offset.float() if trusted else 0.0)
        z = self.GAIN * F.conv2d(feats, self.gate.weight.float(), bias, padding=1)
        g_cls = (torch.sigmoid(z[:, :1]) * trust).clamp(1e-6, 1 - 1e-6)  # (B, 1, h, w)
        g_reg = torch.sigmoid(z[:, 1:]) * trust
        return self.mix(logits, hint, g_cls, bins), reg.float() + g_reg * (hint - reg.float()), g_reg

    def mix(self, logits: torch.Tensor, hint: torch.Tensor, g: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
        """The class output as a mixture, (1 - g) p_network + g N(hint, sigma): logits (B, Q, h, w), hint
        (B, 2, h, w), g (B, 1, h, w) in (0, 1), bins (Q, 2) -> log-probabilities (B, Q, h, w), channels_last.

        Its cross-entropy is never worse than the better part's, so the gate learns to follow a right hint
        as fast as the regression's does; adding the hint's logits times a gate instead (a product of the
        two) made a wrong hint costly and the gate timid (+7.4 against +8.2 dB). Computed with the bins
        last, (B, h*w, Q), where the softmax axis is contiguous (over dim 1 it took 12 ms a frame more).
        Mixed as probabilities, not log-probabilities (logaddexp): 2 ms a frame less. A bin both parts
        give less than 1e-30 is floored there (its log -69), far below any colour either would show."""
        b, q, h, w = logits.shape
        ours = torch.softmax(_cells(logits.float()), -1)
        # -|hint - bin|^2 / (2 sigma^2) as one matmul, (B, h*w, 4) @ (4, Q): (2 hint.bin - |bin|^2 - |hint|^2)
        # / (2 sigma^2). In fp32 whatever autocast says: |bin|^2 reaches 1e4, where bf16 keeps 2-3 digits.
        # Floored at FAR: a bin 10 sigma away gets e^-50 of the nearest one's weight instead of underflowing
        # through fp32's denormals, which x86 computes several times slower: this method took 6.1-6.7 ms a
        # frame (2304 cells), 2.4 floored (AMX, one thread). Nothing shown changes: the network's own
        # share in any bin is far above e^-50 (at least 1e-13 in a fed-back frame of dev01).
        bins = bins.float()
        cell = _cells(hint.float())
        cell = torch.cat((cell, torch.ones_like(cell[..., :1]), cell.square().sum(-1, keepdim=True)), -1)
        per_bin = torch.cat((2 * bins, -bins.square().sum(1, keepdim=True), -torch.ones_like(bins[:, :1])), 1)
        with torch.autocast(hint.device.type, enabled=False):
            near = (cell.float() @ (per_bin.T / (2 * self.sigma**2))).clamp_min_(self.FAR)
            theirs = torch.softmax(near, -1)
        mixed = torch.lerp(ours, theirs, _cells(g))
        return mixed.clamp_min(1e-30).log().reshape(b, h, w, q).permute(0, 3, 1, 2)


def _cells(t: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, h*w, C); a free view of a channels_last tensor."""
    return t.permute(0, 2, 3, 1).reshape(t.shape[0], -1, t.shape[1])


# Holes in a hint are filled from colour within about FILL_SIGMA cells of stride 4 (16 px at the default
# working size): wider gained little and 4 keeps the filled colours local. A hole is trusted in full once
# the colour around it weighs REACH of that Gaussian, else not at all, which beat trusting it by the weight
# itself (docs/experiments.md).
FILL_SIGMA = 4.0
# A pixel of the input carries a hint where |a| + |b| exceeds this (Lab units): a gray hint is no hint.
HINT_CHROMA = 2.0
REACH = 0.05
# The fill takes colour from cells of about the hole's own lightness (a joint bilateral filter, L-guided):
# a hole on a white shirt takes the shirt's colour, not the lawn's beside it, and stays gray where no
# colour of its lightness is near. The evaluation's hint copied with its holes so filled gains +9.9 dB
# over gray against +6.5 with the Gaussian fill (64 held-out photos; lightness sigma 3, 5 and 8 Lab units
# within 0.05 dB; taking the Gaussian fill where no colour of like lightness is near: +8.2). Through the
# shipped gate, unchanged: +8.61 against +8.02 (96 photos). Taps every FILL_STEP cells out to
# FILL_RADIUS: 169 taps instead of 625 cost 0.04 dB of that copy.
FILL_LIGHTNESS = 3.0
FILL_RADIUS = 12
FILL_STEP = 2


def spread(ab: torch.Tensor, colored: torch.Tensor, lightness: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ab (B, 2, h, w): each cell's mean hint in Lab units, 0 where it has none; colored (B, 1, h, w) in
    [0, 1]: the share of the cell carrying it; lightness (B, 1, h, w): each cell's Lab L -> the hint with
    holes filled (B, 2, h, w) and how far to trust it (B, 1, h, w) in [0, 1]: the coloured share, or 1 in a
    hole with colour near, 0 far from any."""
    fill, near = guided_fill(ab, colored, lightness)
    # A cell's own colours keep their weight, the uncoloured rest takes the fill.
    return ab + (1 - colored) * fill, colored + (1 - colored) * (near > REACH).float()


def guided_fill(ab: torch.Tensor, colored: torch.Tensor, lightness: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean colour of the coloured cells around each cell, weighted by distance (Gaussian, FILL_SIGMA
    cells) and by likeness of lightness (Gaussian, FILL_LIGHTNESS), near 0 (gray) where no colour of the
    cell's lightness is in reach; and the share of colour around it by distance alone (the Gaussian's
    weighted mean of colored, from the same taps). Shapes as `spread`'s -> (B, 2, h, w), (B, 1, h, w).
    Computed only where a cell is not wholly coloured (spread uses it nowhere else; 0 there): fed back
    colours leave few holes, and the fill over every cell took 5 of a hinted frame's 31 ms."""
    b, _, h, w = ab.shape
    r, step = FILL_RADIUS, FILL_STEP
    offsets = torch.arange(-r, r + 1, step, device=ab.device)
    near = torch.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2).float() / (2 * FILL_SIGMA**2)).flatten()  # (K,)
    # A cell with no coloured pixel may still hold the faint chroma (|a| + |b| <= 2) of near-gray ones: left
    # in, it would count with no weight to divide it by (it cost the hint 0.3 dB through the shipped gate).
    ab = ab.float() * (colored > 0)
    wp = w + 2 * r
    cells = F.pad(torch.cat((ab, colored, lightness), 1).float(), (r, r, r, r), mode="replicate")
    cells = cells.permute(0, 2, 3, 1).reshape(b, -1, 4)  # (B, (h+2r)(w+2r), 4): a, b times colored, colored, L
    batch, cell = torch.nonzero(colored.reshape(b, -1) < 1, as_tuple=True)  # (N,) each: the cells to fill
    y, x = cell // w, cell % w
    dy, dx = torch.meshgrid(offsets, offsets, indexing="ij")
    taps = cells[batch[:, None], (y[:, None] + r + dy.flatten()) * wp + (x[:, None] + r + dx.flatten())]  # (N, K, 4)
    own = lightness.reshape(b, -1)[batch, cell].float()  # (N,)
    d = (taps[..., 3] - own[:, None]) / (math.sqrt(2) * FILL_LIGHTNESS)
    wt = torch.exp(-(d * d)) * near  # (N, K)
    # ab is each cell's colour times its coloured share, so the weight sums colored.
    total = (taps[..., :3] * wt[..., None]).sum(1)  # (N, 3)
    fill = torch.zeros(b, h * w, 2, device=ab.device)
    fill[batch, cell] = total[:, :2] / total[:, 2:].clamp_min(1e-6)
    share = torch.zeros(b, h * w, device=ab.device)
    share[batch, cell] = (taps[..., 2] * near).sum(1) / near.sum()
    return fill.reshape(b, h, w, 2).permute(0, 3, 1, 2), share.reshape(b, 1, h, w)


class ColorNet(nn.Module):
    # Input sides must be multiples of this (five stride-2 steps).
    multiple = 32

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.decoder
        self.colors = ColorDecoder(cfg.bin_grid)
        self.encoder = MobileNetV2()
        self.top = ConvBN(LAST_CHANNELS, d[3], k=1)
        self.top_lateral = ConvBN(ENCODER_CHANNELS[3], d[3], k=1, act=False)
        self.context = GlobalContext(LAST_CHANNELS, d[3], cfg.global_dim)
        self.up16 = Up(d[3], ENCODER_CHANNELS[2], d[2])
        self.up8 = Up(d[2], ENCODER_CHANNELS[1], d[1])
        self.up4 = Up(d[1], ENCODER_CHANNELS[0], d[0])
        self.hint = HintGate(d[0], cfg.bin_grid / 2) if cfg.hint_gate else None
        self.refine = ResBlock(d[0])
        self.logits = nn.Conv2d(d[0], self.colors.num_bins, 1)
        self.regress = nn.Conv2d(d[0], 2, 1)

    def padded(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> the same, its right and bottom edges replicated up to multiples of `multiple`; the
        outputs then need cropping to ceil(H/4), ceil(W/4)."""
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x

    def encode(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        """rgb (B, 3, H, W) in [0, 1] -> the encoder's maps (backbone.MobileNetV2.features)."""
        x = rgb * 2.0 - 1.0  # the encoder's ImageNet input scaling
        if rgb.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        return self.encoder.features(x)

    def body(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """rgb (B, 3, H, W) in [0, 1], H and W multiples of 32 -> logits (B, Q, H/4, W/4), ab regression
        (B, 2, H/4, W/4) in Lab units, and the decoder's last features (B, c, H/4, W/4) that the hint gate
        reads: all but the gate, the part an int8 engine runs instead (int8.py)."""
        return self.top_down(self.encode(rgb))

    def top_down(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The encoder's maps -> body's outputs."""
        f4, f8, f16, f32, top = feats
        x = F.relu(self.top(top) + self.top_lateral(f32))
        x = self.context(x, top.mean(dim=(2, 3)))
        x = self.refine(self.up4(self.up8(self.up16(x, f16), f8), f4))
        return conv1x1(self.logits, x), conv1x1(self.regress, x) * 64.0, x

    def head(
        self, feats: list[torch.Tensor], rgb: torch.Tensor, trusted: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The encoder's maps and its input rgb (B, 3, H, W) -> forward's outputs (training shares the
        encoder's maps between losses)."""
        return self.gate(*self.top_down(feats), rgb, trusted)

    def gate(
        self, logits: torch.Tensor, reg: torch.Tensor, x: torch.Tensor, rgb: torch.Tensor, trusted: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """body's outputs and its input -> logits and regression moved toward the input's colours (HintGate),
        and how far the regression follows them (B, 1, H/4, W/4) in [0, 1]. trusted: the input's colours are
        true ones (HintGate.trusted_offset)."""
        if self.hint is not None:
            return self.hint(x, rgb, logits, reg, self.colors.bins, trusted)
        return logits, reg, torch.zeros_like(reg[:, :1], dtype=torch.float32)

    def forward(
        self, rgb: torch.Tensor, trusted: bool = False, body: Callable | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """rgb (B, 3, H, W) in [0, 1], H and W multiples of 32 -> logits (B, Q, H/4, W/4), ab regression
        (B, 2, H/4, W/4) in Lab units, and how far the regression follows a hint (B, 1, H/4, W/4) in [0, 1].
        trusted: the input's colours are true ones, not the network's own fed back (HintGate). body: runs
        in place of `self.body` (an int8 engine, int8.py)."""
        return self.gate(*(body or self.body)(rgb), rgb, trusted)

    def decode(
        self, logits: torch.Tensor, reg: torch.Tensor, follow: torch.Tensor, decode: DecodeConfig, match: Match | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The forward pass's outputs -> ab (B, 2, h, w) in Lab units and confidence (B, 1, h, w) in [0, 1]:
        the decoded classes, moved toward the regression as far as it follows a hint.

        A followed hint keeps its own colour: decoded, the hint's sharp peak in the class mixture lands on
        the 10-unit bins, which cost the held-out clips' hint 1.1 dB against the regression (+7.72 against
        +8.80 over gray, the gates open). A gray input follows nothing and gets the classes alone."""
        ab, conf = self.colors(logits, decode, match)
        return ab + follow * (reg.float() - ab), conf + follow * (1.0 - conf)

    def fuse(self) -> ColorNet:
        """Fold the decoder's batch norms into its convolutions (eval only; the encoder has them folded)."""
        self.eval()
        for m in self.modules():
            if isinstance(m, ConvBN):
                m.fuse()
        return self

    def colorize_ab(
        self,
        rgb: torch.Tensor,
        decode: DecodeConfig,
        match: Match | None = None,
        trusted: bool = False,
        body: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """rgb (B, 3, H, W) in [0, 1], any size -> ab (B, 2, ceil(H/4), ceil(W/4)) in Lab units (the
        decoded bins, or a followed hint's colours: `decode`), confidence (B, 1, same) in [0, 1], and the
        regression head's ab (B, 2, same): the calibrated estimate (trained on the truth by Huber loss) that
        feedback carries to the next frame. trusted: rgb's colours are true ones (HintGate.trusted_offset).
        body: runs `self.body` instead (an int8 engine, int8.py). Pads to a multiple of 32 with edge
        replication and crops the result.
        """
        h, w = rgb.shape[-2:]
        logits, reg, follow = self(self.padded(rgb), trusted, body)
        ab, conf = self.decode(logits, reg, follow, decode, match)
        oh, ow = math.ceil(h / 4), math.ceil(w / 4)
        return ab[..., :oh, :ow], conf[..., :oh, :ow], reg.float()[..., :oh, :ow]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
