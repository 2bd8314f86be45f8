"""Read the ImageNet MobileNetV2 from Google's uint8-quantized TFLite file into float weights.

Training-time only (the `tflite` package is in the `train` extra): the shipped
safetensors file holds the fine-tuned encoder, so run time never reads this file.

The file's CONV_2D and DEPTHWISE_CONV_2D operators come in the order
`vidcolor.backbone.MobileNetV2` defines its convolutions, so they are matched
one to one; each tensor is dequantized with its own per-tensor scale and zero
point (biases are int32 with scale = input scale x weight scale, zero point 0).
TFLite stores convolution weights as (out, kh, kw, in) and depthwise ones as
(1, kh, kw, channels); torch wants (out, in, kh, kw) and (channels, 1, kh, kw).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..backbone import MobileNetV2, SameConv

DEFAULT_TFLITE = Path("../shared/pretrained/mobilenet_v2_1.0_224_quant.tflite")
DEFAULT_LABELS = DEFAULT_TFLITE.with_name("imagenet_labels.txt")


def _dequantize(model, graph, index: int) -> np.ndarray:
    import tflite

    tensor = graph.Tensors(index)
    raw = model.Buffers(tensor.Buffer()).DataAsNumpy()
    dtype = {tflite.TensorType.UINT8: np.uint8, tflite.TensorType.INT32: np.int32}[tensor.Type()]
    values = np.frombuffer(raw.tobytes(), dtype=dtype).reshape(tensor.ShapeAsNumpy())
    q = tensor.Quantization()
    scale, zero = float(q.ScaleAsNumpy()[0]), int(q.ZeroPointAsNumpy()[0])
    return ((values.astype(np.float64) - zero) * scale).astype(np.float32)


def read_convolutions(path: Path) -> list[tuple[str, np.ndarray, np.ndarray, int, bool]]:
    """-> per convolution in file order: (kind, weight in torch layout, bias, stride, relu6)."""
    import tflite

    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    graph = model.Subgraphs(0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    convs = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        if kind not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        opts = tflite.Conv2DOptions() if kind == "CONV_2D" else tflite.DepthwiseConv2DOptions()
        opts.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
        if opts.Padding() != tflite.Padding.SAME:
            raise ValueError(f"operator {i}: only SAME padding is expected")
        w = _dequantize(model, graph, op.Inputs(1))
        w = w.transpose(0, 3, 1, 2) if kind == "CONV_2D" else w.transpose(3, 0, 1, 2)
        relu6 = opts.FusedActivationFunction() == tflite.ActivationFunctionType.RELU6
        convs.append((kind, np.ascontiguousarray(w), _dequantize(model, graph, op.Inputs(2)), opts.StrideH(), relu6))
    return convs


def load_mobilenet_v2(path: Path = DEFAULT_TFLITE, classifier: bool = False) -> MobileNetV2:
    """A MobileNetV2 with the file's ImageNet weights (float32, eval mode)."""
    net = MobileNetV2(classifier=True)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    stored = read_convolutions(path)
    if len(stored) != len(convs):
        raise ValueError(f"{path}: {len(stored)} convolutions, the network has {len(convs)}")
    with torch.no_grad():
        for conv, (kind, w, b, stride, relu6) in zip(convs, stored, strict=True):
            if tuple(conv.weight.shape) != w.shape or conv.stride[0] != stride:
                raise ValueError(f"{path}: a {kind} of shape {w.shape} where the network has {tuple(conv.weight.shape)}")
            if isinstance(conv, SameConv) and conv.relu6 != relu6:
                raise ValueError(f"{path}: activation mismatch at a {kind} of shape {w.shape}")
            conv.weight.copy_(torch.from_numpy(w))
            conv.bias.copy_(torch.from_numpy(b))
    if not classifier:
        net.classifier = None
    return net.eval()
