"""The int8 engine for CPUs: the network's body on ONNX Runtime (its decoder in int8), its hint gate and
decoding in numpy.

`python -m vidcolor.train quantize` makes `<weights>.int8.onnx` from a network's weights: its body
(ColorNet.body: the encoder and decoder, up to the logits, the regression and the features the hint gate
reads), the encoder in fp32 and the decoder with int8 weights (per channel) and int8 activations whose
ranges were measured on real frames (train/quantize.py says why). The record beside the weights names the
file and the sha256 of the weights it was made from (record.Int8Record): other weights never use it.

The hint gate (model.HintGate) and the decoding of the bins (decoding.ColorDecoder, ColorNet.decode) run
here in numpy, in fp32, from the same weights' tensors: the same formulas as the torch engine's, so that a
run on this engine never imports torch (about 195 MB and a second of start-up). tests/test_int8.py holds
the two to the same outputs.

ONNX Runtime runs one session per thread count asked for: the model's workers (inference.Ahead) run one
frame each on one thread, which keeps 2 cores busier than one frame at a time on both.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from .color import rgb_to_lab_np, soft_histogram
from .record import DecodeConfig, WeightsRecord, file_hash
from .reference import Match

# model.py's constants for the gate, the hole fill and the mixture (see there for why each is so).
GAIN, FAR = 10.0, -50.0
FILL_SIGMA, REACH, FILL_LIGHTNESS, FILL_RADIUS, FILL_STEP = 4.0, 0.05, 3.0, 12, 2
HINT_CHROMA = 2.0  # model.HINT_CHROMA: where a pixel carries a hint
MULTIPLE = 32  # ColorNet.multiple: input sides are padded to it


class Int8Unavailable(Exception):
    """Why the int8 engine cannot run these weights here (one line)."""


def ort():
    """onnxruntime, imported on first use: a torch-only run never loads it."""
    try:
        import onnxruntime
    except ImportError:
        raise Int8Unavailable("onnxruntime is not installed (pip install onnxruntime)") from None
    except OSError as e:  # installed, but its library does not load on this system
        raise Int8Unavailable(f"onnxruntime does not load here ({e})") from None
    return onnxruntime


class Int8Body:
    """ColorNet.body's stand-in: rgb (B, 3, H, W) float32 in [0, 1], H and W multiples of 32 -> logits
    (B, Q, H/4, W/4), ab regression (B, 2, H/4, W/4) in Lab units, decoder features (B, c, H/4, W/4), all
    float32 numpy."""

    def __init__(self, path: Path):
        self.path = path
        self.sessions: dict[int, object] = {}
        self.lock = threading.Lock()

    def session(self, threads: int):
        """The session that runs on `threads` threads, made on first use (the lock only then: this is per frame)."""
        if (made := self.sessions.get(threads)) is not None:
            return made
        with self.lock:
            if threads not in self.sessions:
                rt = ort()
                so = rt.SessionOptions()
                so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
                so.execution_mode = rt.ExecutionMode.ORT_SEQUENTIAL
                # Idle pool threads sleep instead of spinning: the decoder, flow and encoder need the cores (as
                # torch's OpenMP threads do under OMP_WAIT_POLICY=PASSIVE, cli.py).
                so.add_session_config_entry("session.intra_op.allow_spinning", "0")
                # No memory pattern (one block per input size, planned ahead): 12 MB less a session, as fast.
                so.enable_mem_pattern = False
                try:
                    self.sessions[threads] = rt.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
                except Exception as e:  # ONNX Runtime raises its own types for a file it cannot read
                    first = (str(e).splitlines() or [type(e).__name__])[0]
                    raise Int8Unavailable(f"{self.path} is not an ONNX file ONNX Runtime can read ({first})") from None
            return self.sessions[threads]

    def __call__(self, rgb: np.ndarray, threads: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        logits, reg, feats = self.session(threads).run(None, {"rgb": np.ascontiguousarray(rgb, dtype=np.float32)})
        return logits, reg, feats


class Head:
    """The hint gate and the decoding, in numpy: model.HintGate, decoding.ColorDecoder and ColorNet.decode.

    Maps are channels-first, (B, C, h, w), as ONNX Runtime gives them: the reductions over the bins (axis 1)
    run along rows of contiguous cells, and nothing large is transposed (cells-last took 1.5 ms a frame
    more in transposes alone, and 4 more in reductions over a short last axis). No product goes through
    BLAS (`@`): OpenBLAS's own threads spin beside the model workers, and a run took 10.2 s against 6.9
    with them held to one (240 frames, 640x360); einsum and broadcasting cost 0.6 ms a fed-back frame more."""

    def __init__(self, tensors: dict[str, np.ndarray], sigma: float):
        """tensors: the weights' (safetensors), fp32; sigma: the hint's Gaussian in Lab units (bin_grid / 2)."""
        self.bins = tensors["colors.bins"].astype(np.float32)  # (Q, 2) ab centres
        # (3, Q): a, b and 1 per bin, so one product gives a mean's numerators and its denominator.
        self.bins_one = np.ascontiguousarray(np.concatenate((self.bins, np.ones_like(self.bins[:, :1])), 1).T)
        self.log_weights = np.log(tensors["colors.class_weights"].astype(np.float32))[:, None, None]  # (Q, 1, 1)
        # The hint's Gaussian over the bins factors along a and b, exp(-da^2 s) exp(-db^2 s), and the bins
        # lie on one grid: each axis's factor is made over the grid's values (22, not Q = 265 exps a cell)
        # and gathered to the bins by their indices on it.
        self.scale = np.float32(1.0 / (2 * sigma**2))
        self.axis_a, self.index_a = np.unique(self.bins[:, 0], return_inverse=True)
        self.axis_b, self.index_b = np.unique(self.bins[:, 1], return_inverse=True)
        self.gated = "hint.gate.weight" in tensors
        if self.gated:
            w = tensors["hint.gate.weight"].astype(np.float32)  # (2, c + 4, 3, 3)
            self.taps = np.ascontiguousarray(w.transpose(2, 3, 0, 1).reshape(18, -1))  # (9 taps x 2, c + 4)
            self.bias = tensors["hint.gate.bias"].astype(np.float32)  # (2,)
            self.trusted_offset = np.float32(tensors.get("hint.trusted_offset", np.zeros(())))

    def gate(
        self, logits: np.ndarray, reg: np.ndarray, feats: np.ndarray, rgb: np.ndarray, trusted: bool
    ) -> tuple[Scores, np.ndarray, np.ndarray]:
        """logits (B, Q, h, w), reg (B, 2, h, w), feats (B, c, h, w), rgb (B, 4h, 4w, 3) in [0, 1] -> the
        colour distribution (Scores), reg, and how far reg follows the hint (B, 1, h, w)."""
        if not self.gated or not _carries_colour(rgb):
            return Scores(logits, False), reg, np.zeros_like(reg[:, :1])  # a gray input: both gates are 0
        lab = rgb_to_lab_np(rgb)
        colored = _pool4((np.abs(lab[..., 1:]).sum(-1, keepdims=True) > HINT_CHROMA).astype(np.float32))
        lab4 = _pool4(lab)
        hint, trust = (_first(t) for t in _spread(lab4[..., 1:], colored, lab4[..., :1]))
        x = np.concatenate((feats, _first(lab4[..., :1]) / 100.0, hint / 64.0, trust), 1).astype(np.float32)
        bias = self.bias + (self.trusted_offset if trusted else np.float32(0.0))
        z = GAIN * (_conv3x3(x, self.taps) + bias[:, None, None])
        g_cls = np.clip(_sigmoid(z[:, :1]) * trust, 1e-6, 1 - 1e-6)
        g_reg = _sigmoid(z[:, 1:]) * trust
        return Scores(self._mix(logits, hint, g_cls), True), reg + g_reg * (hint - reg), g_reg

    def _mix(self, logits: np.ndarray, hint: np.ndarray, g: np.ndarray) -> np.ndarray:
        """HintGate.mix: (1 - g) softmax(logits) + g N(hint, sigma) over the bins -> probabilities (B, Q, h, w).
        Each axis's exponent is floored at FAR / 2, as HintGate floors their sum at FAR: no denormals."""
        # In place: each (B, Q, h, w) map is 2.7 MB at 256x160. (What made fresh ones slow was glibc returning
        # them to the system: precision.keep_freed_memory.)
        e = logits - logits.max(1, keepdims=True)
        np.exp(e, out=e)
        e *= (1 - g) / e.sum(1, keepdims=True)
        b, h, w = hint.shape[0], *hint.shape[2:]
        cells = hint.reshape(b, 2, 1, -1)
        fa = np.exp(np.maximum(-self.scale * (cells[:, 0] - self.axis_a[:, None]) ** 2, FAR / 2))  # (B, 22, h*w)
        fb = np.exp(np.maximum(-self.scale * (cells[:, 1] - self.axis_b[:, None]) ** 2, FAR / 2))
        theirs = fa[:, self.index_a]  # (B, Q, h*w), unnormalized
        theirs *= fb[:, self.index_b]
        theirs = theirs.reshape(b, -1, h, w)
        theirs *= g / theirs.sum(1, keepdims=True)
        e += theirs
        return e

    def decode(
        self, scores: Scores, reg: np.ndarray, follow: np.ndarray, cfg: DecodeConfig, match: Match | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """ColorNet.decode: -> ab (B, 2, h, w) in Lab units and confidence (B, 1, h, w) in [0, 1]."""
        e, z = scores.rebalanced(np.float32(1.0 - cfg.saturation) * self.log_weights)
        if match is not None:

            def shown(bias: np.ndarray) -> np.ndarray:
                ab = self._mean(_softmax((z + bias[:, None, None]) / np.float32(max(cfg.temperature, 1e-3))))
                return soft_histogram(ab.transpose(0, 2, 3, 1).reshape(-1, 2), self.bins)

            e, z = Scores(z + match(shown)[:, None, None], False).rebalanced(np.float32(0.0))
        # z = log e, so the entropy of e / sum(e) is log sum(e) - sum(e z) / sum(e).
        total = e.sum(1, keepdims=True)
        entropy = np.log(total) - np.einsum("bqhw,bqhw->bhw", e, z)[:, None] / total
        t = max(cfg.temperature, 1e-3)
        ab = self._mean(np.multiply(e, e, out=z) if t == 0.5 else np.exp(z / np.float32(t), out=z))
        conf = 1.0 - entropy / np.float32(math.log(len(self.bins)))
        return ab + follow * (reg - ab), conf + follow * (1.0 - conf)

    def _mean(self, weights: np.ndarray) -> np.ndarray:
        """weights (B, Q, h, w) >= 0, not normalized -> their mean ab over the bins (B, 2, h, w)."""
        b, q, h, w = weights.shape
        sums = np.einsum("kq,bqn->bkn", self.bins_one, weights.reshape(b, q, -1)).reshape(b, 3, h, w)
        return sums[:, :2] / sums[:, 2:]


class Scores(NamedTuple):
    """The colour distribution over the bins, (B, Q, h, w): the network's logits, or, where the gate mixed a
    hint in, the mixture's probabilities (kept as such: their log and exp again cost 2 ms a fed-back frame)."""

    values: np.ndarray
    probs: bool

    def rebalanced(self, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Divided by exp(shift) (shift (Q, 1, 1): decoding's (1 - saturation) log w) -> e, unnormalized
        weights (B, Q, h, w) whose largest in a cell is about 1, and z = log e."""
        if self.probs:
            e = self.values * np.exp(-shift)
            z = np.maximum(e, np.float32(1e-30))  # as HintGate.mix floors its log
            return e, np.log(z, out=z)
        z = self.values - shift
        z -= z.max(1, keepdims=True)
        return np.exp(z), z

    def crop(self, h: int, w: int) -> Scores:
        return Scores(self.values[..., :h, :w], self.probs)


class Int8Net:
    """The int8 engine's network: Int8Body, then Head; numpy in and out (inference.Colorizer's net)."""

    device, dtype, engine = "cpu", "int8", "int8"

    def __init__(self, body: Int8Body, head: Head):
        self.body, self.head = body, head

    @property
    def bins(self) -> np.ndarray:
        return self.head.bins

    @classmethod
    def for_weights(cls, weights: Path, record: WeightsRecord) -> Int8Net:
        """The int8 engine made from the weights at `weights`; Int8Unavailable if there is none for them."""
        if not record.int8.file:
            raise Int8Unavailable(f"{weights.name} has no int8 network (python -m vidcolor.train quantize makes one)")
        path = weights.parent / record.int8.file
        if not path.is_file():
            raise Int8Unavailable(f"{path} is missing (reinstall vidcolor, or python -m vidcolor.train quantize)")
        if file_hash(weights) != record.int8.weights_sha256:
            raise Int8Unavailable(f"{path.name} was made from other weights than {weights.name} (run quantize again)")
        body = Int8Body(path)
        body.session(1)  # the model workers' session, made now: a file ONNX Runtime cannot read fails here
        from safetensors import safe_open

        try:
            with safe_open(str(weights), framework="numpy") as f:
                tensors = {k: f.get_tensor(k).astype(np.float32) for k in f.keys() if k.startswith(("colors.", "hint."))}
        except Exception as e:  # safetensors' own error types for a file that is not its format
            raise Int8Unavailable(f"{weights} is not a safetensors file vidcolor can read ({str(e).splitlines()[0]})") from None
        return cls(body, Head(tensors, record.model.bin_grid / 2))

    def forward(self, batch: np.ndarray, trusted: bool, threads: int) -> tuple[Scores, np.ndarray, np.ndarray]:
        """(B, H, W, 3), padded here to multiples of 32 (edge) -> the gated Scores, reg and follow, (B, C,
        H', W') at the padded size / 4 (decoded there, as ColorNet.colorize_ab does, then cropped)."""
        return self._forward(batch, trusted, threads)[0]

    def _forward(
        self, batch: np.ndarray, trusted: bool, threads: int
    ) -> tuple[tuple[Scores, np.ndarray, np.ndarray], np.ndarray]:
        """forward's outputs, and the decoder's features (B, c, H', W')."""
        h, w = batch.shape[1:3]
        padded = np.pad(batch, ((0, 0), (0, (-h) % MULTIPLE), (0, (-w) % MULTIPLE), (0, 0)), mode="edge")
        logits, reg, feats = self.body(padded.transpose(0, 3, 1, 2), threads)
        return self.head.gate(logits, reg, feats, padded, trusted), feats

    def run(self, batch: np.ndarray, decode: DecodeConfig, match: Match | None, trusted: bool, threads: int) -> np.ndarray:
        """(B, H, W, 3) float32 in [0, 1] -> (B, H, W, 5): a, b, confidence, regression a, b, upsampled
        (bilinear, half-pixel centres: F.interpolate's align_corners=False) to the input size."""
        h, w = batch.shape[1:3]
        scores, reg, follow = self.forward(batch, trusted, threads)
        ab, conf = self.head.decode(scores, reg, follow, decode, match)
        oh, ow = math.ceil(h / 4), math.ceil(w / 4)
        out = np.concatenate((ab, conf, reg), 1)[:, :, :oh, :ow].transpose(0, 2, 3, 1)
        return np.stack([cv2.resize(o, (w, h), interpolation=cv2.INTER_LINEAR) for o in out])

    def guess(self, rgb: np.ndarray, decode: DecodeConfig, threads: int) -> tuple[np.ndarray, np.ndarray]:
        """inference.Colorizer.guess: rgb (H, W, 3) -> ab (H, W, 2), features (c, ceil(H/4), ceil(W/4))."""
        h, w = rgb.shape[:2]
        (scores, reg, follow), feats = self._forward(rgb[None], False, threads)
        ab, _ = self.head.decode(scores, reg, follow, decode, None)
        oh, ow = math.ceil(h / 4), math.ceil(w / 4)
        ab = cv2.resize(np.ascontiguousarray(ab[0, :, :oh, :ow].transpose(1, 2, 0)), (w, h), interpolation=cv2.INTER_LINEAR)
        return ab, np.ascontiguousarray(feats[0, :, :oh, :ow])

    def distribution(self, rgb: np.ndarray, decode: DecodeConfig, trusted: bool) -> np.ndarray:
        """inference.Colorizer.distribution: rgb (H, W, 3) -> (Q, H/4, W/4) float32."""
        h, w = rgb.shape[:2]
        scores = self.forward(rgb[None], trusted, 1)[0].crop(h // 4, w // 4)
        e, _ = scores.rebalanced(np.float32(1.0 - decode.saturation) * self.head.log_weights)
        return (e / e.sum(1, keepdims=True))[0]


def _softmax(z: np.ndarray) -> np.ndarray:
    """Over the bins, axis 1 of (B, Q, h, w)."""
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _carries_colour(rgb: np.ndarray) -> bool:
    """rgb (..., 3): some pixel's channels differ by half a level of 255 or more (HintGate's test)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return max(float(np.abs(r - g).max()), float(np.abs(r - b).max()), float(np.abs(g - b).max())) >= 0.5 / 255


def _first(x: np.ndarray) -> np.ndarray:
    """(B, h, w, C) -> (B, C, h, w), contiguous (small maps only)."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _pool4(x: np.ndarray) -> np.ndarray:
    """(B, H, W, C) float32, H and W multiples of 4 -> the mean of each 4x4 cell, (B, H/4, W/4, C): OpenCV's
    area resize, 0.05 ms a 256x160 frame against numpy's mean over the cells' axes, 1.0."""
    b, h, w, c = x.shape
    size = (w // 4, h // 4)
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA).reshape(h // 4, w // 4, c) for f in x])


def _conv3x3(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """x (B, C, h, w), zero-padded by 1, convolved with taps (9 x O, C), row by row -> (B, O, h, w): one
    product over the padded grid, then each tap's share summed at its offset."""
    b, c, h, w = x.shape
    p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = np.einsum("oc,bcn->bon", taps, p.reshape(b, c, -1)).reshape(b, 9, -1, h + 2, w + 2)
    return sum(y[:, 3 * ky + kx, :, ky : ky + h, kx : kx + w] for ky in range(3) for kx in range(3))


def _spread(ab: np.ndarray, colored: np.ndarray, lightness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """model.spread, cells-last: ab (B, h, w, 2), colored and lightness (B, h, w, 1) -> the hint with holes
    filled (B, h, w, 2) and how far to trust it (B, h, w, 1)."""
    fill, near = _guided_fill(ab, colored, lightness)
    return ab + (1 - colored) * fill, colored + (1 - colored) * (near > REACH).astype(np.float32)


def _guided_fill(ab: np.ndarray, colored: np.ndarray, lightness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """model.guided_fill, cells-last: computed only where a cell is not wholly coloured."""
    b, h, w, _ = ab.shape
    r, step = FILL_RADIUS, FILL_STEP
    offsets = np.arange(-r, r + 1, step)
    near = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2).astype(np.float32) / (2 * FILL_SIGMA**2)).ravel()  # (K,)
    ab = ab * (colored > 0)
    wp = w + 2 * r
    cells = np.pad(np.concatenate((ab, colored, lightness), -1), ((0, 0), (r, r), (r, r), (0, 0)), mode="edge")
    cells = cells.reshape(b, -1, 4)  # a, b times colored, colored, L
    batch, cell = np.nonzero(colored.reshape(b, -1) < 1)  # (N,) each: the cells to fill
    y, x = cell // w, cell % w
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    taps = cells[batch[:, None], (y[:, None] + r + dy.ravel()) * wp + (x[:, None] + r + dx.ravel())]  # (N, K, 4)
    own = lightness.reshape(b, -1)[batch, cell]  # (N,)
    d = (taps[..., 3] - own[:, None]) / np.float32(math.sqrt(2) * FILL_LIGHTNESS)
    wt = np.exp(-(d * d)) * near  # (N, K)
    total = np.einsum("nkc,nk->nc", taps[..., :3], wt)  # (N, 3)
    fill = np.zeros((b, h * w, 2), np.float32)
    fill[batch, cell] = total[:, :2] / np.maximum(total[:, 2:], 1e-6)
    share = np.zeros((b, h * w), np.float32)
    share[batch, cell] = (taps[..., 2] * near).sum(1) / near.sum()
    return fill.reshape(b, h, w, 2), share.reshape(b, h, w, 1)
