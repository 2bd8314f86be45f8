"""The release step that makes a network's int8 engine (vidcolor/int8.py) from its weights.

The body (ColorNet.body) is exported to ONNX in fp32, then its decoder is quantized by ONNX Runtime's
static quantizer: int8 weights per output channel, uint8 activations with ranges measured on calibration
inputs (QDQ format, which ONNX Runtime fuses into integer kernels), the outer 0.001 % of each range
clipped. The encoder stays fp32 (FP32_LAYERS), and so do the two heads' 1x1 convolutions (head_convs).
The calibration inputs are what the network sees at run time: training photos at the working size, half of
them gray and half carrying some of their own colours (as fed-back colours and keyframes do). The result
is written beside the weights and named in their record with the weights' sha256 (weights.Int8Record).

Needs the `onnx` package besides onnxruntime ([train] extra).
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..int8 import ort
from ..lab import lab_to_rgb, rgb_to_lab
from ..model import ColorNet
from ..record import Int8Record, file_hash, read_weights, write_record
from ..weights import load_model

# Convolutions left in fp32, by the exported graph's names: the whole encoder (the stem, the inverted
# residual blocks, the last 1x1), so int8 is the decoder's alone: int8 errors add up along the encoder's
# 17 blocks, and cost a clip's frames up to 0.55 dB against fp32's (docs/experiments.md).
FP32_LAYERS = ("stem/", "blocks.", "last/")
SIZE = (160, 256)  # (H, W): the default working size (256 px long side, 16:9) padded to a multiple of 32


class _Body(torch.nn.Module):
    """ColorNet.body as a module of its own, for the exporter."""

    def __init__(self, model: ColorNet):
        super().__init__()
        self.model = model

    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.model.body(rgb)


def export_body(model: ColorNet, path: Path) -> None:
    """model's body (fused, fp32) -> an ONNX file with inputs of any batch and size."""
    x = torch.rand(1, 3, *SIZE)
    axes = {0: "batch", 2: "height", 3: "width"}
    with torch.no_grad():
        torch.onnx.export(
            _Body(model.fuse().float()),
            (x,),
            str(path),
            input_names=["rgb"],
            output_names=["logits", "reg", "features"],
            dynamic_axes={"rgb": axes, "logits": axes, "reg": axes, "features": axes},
            opset_version=17,
            dynamo=False,
        )


def calibration_inputs(photos: list[Path], seed: int = 0) -> list[np.ndarray]:
    """Photos -> the network's inputs (1, 3, H, W) float32 in [0, 1] at SIZE (scaled to cover it, cropped
    at the centre): every other one gray, the rest keeping a random 30-100 % of their chroma."""
    rng = random.Random(seed)
    h, w = SIZE
    out = []
    for i, p in enumerate(photos):
        im = Image.open(p).convert("RGB")
        s = max(w / im.width, h / im.height)
        im = im.resize((max(w, round(im.width * s)), max(h, round(im.height * s))), Image.BILINEAR)
        top, left = (im.height - h) // 2, (im.width - w) // 2
        x = torch.from_numpy(np.asarray(im)[top : top + h, left : left + w].astype(np.float32) / 255)
        lab = rgb_to_lab(x.permute(2, 0, 1)[None])
        lab[:, 1:] *= 0.0 if i % 2 == 0 else rng.uniform(0.3, 1.0)
        out.append(np.ascontiguousarray(lab_to_rgb(lab).clamp(0, 1).numpy(), dtype=np.float32))
    return out


def quantize_body(onnx_fp32: Path, out: Path, inputs: list[np.ndarray]) -> None:
    """An fp32 body -> its int8 body, activations calibrated (min-max) on inputs."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(inputs)

        def get_next(self) -> dict | None:
            x = next(self.it, None)
            return None if x is None else {"rgb": x}

    ort()
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(onnx_fp32), str(pre), skip_symbolic_shape=True)
        graph = onnx.load(str(pre)).graph
        convs = [n.name for n in graph.node if n.op_type == "Conv"]
        kept = [n for n in convs if any(f"/{layer}" in n for layer in FP32_LAYERS)]
        if not kept:
            raise RuntimeError(f"none of the layers {FP32_LAYERS} found among the exported convolutions {convs[:4]}...")
        kept += head_convs(graph)
        quantize_static(
            str(pre),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=kept,
            calibrate_method=CalibrationMethod.Percentile,
            # 7-bit weights: AVX2's u8 x s8 kernels (vpmaddubsw) add pairs in 16 bits and saturate on full
            # 8-bit weights (3 % of the colour lost); with 7 they give exactly VNNI's results.
            reduce_range=True,
        )


def head_convs(graph) -> list[str]:
    """The convolutions that make the body's logits and regression outputs (an onnx GraphProto), found by
    walking back from those outputs. They stay fp32: an int8 output rounds the regressed colours to steps of
    0.56 Lab units, and fed back frame after frame the rounding leans the video off fp32's."""
    made_by = {out: node for node in graph.node for out in node.output}
    found = []
    for name in ("logits", "reg"):
        node = made_by.get(name)
        while node is not None and node.op_type != "Conv":
            node = made_by.get(node.input[0])
        if node is None:
            raise RuntimeError(f"no convolution found behind the body's output {name!r}")
        found.append(node.name)
    return found


def quantize_weights(weights: Path, photos: list[Path], calibration: str) -> Path:
    """weights (.safetensors) -> `<name>.int8.onnx` beside them, named in their record; calibration: what
    the photos were (the record keeps it)."""
    model, _ = load_model(weights)
    out = weights.with_name(weights.stem + ".int8.onnx")
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "body.onnx"
        export_body(model, fp32)
        quantize_body(fp32, out, calibration_inputs(photos))
    record = read_weights(weights)
    write_record(weights, replace(record, int8=Int8Record(out.name, file_hash(weights), calibration)))
    return out
