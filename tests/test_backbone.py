"""The pretrained encoder: the TFLite reader rebuilds a working ImageNet classifier; SAME padding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vidcolor.backbone import MobileNetV2, SameConv

TFLITE = Path(__file__).resolve().parents[2] / "shared" / "pretrained" / "mobilenet_v2_1.0_224_quant.tflite"


def test_same_padding_puts_the_extra_row_and_column_at_the_bottom_right():
    conv = SameConv(1, 1, 3, 2, relu6=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0  # picks the top-left tap of each window
        conv.bias.zero_()
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    y = conv(x)
    assert y.shape == (1, 1, 2, 2)
    # No padding on top/left: the first window starts at (0, 0), as TensorFlow's "SAME" does.
    assert y[0, 0].tolist() == [[0.0, 2.0], [8.0, 10.0]]


def test_feature_maps_have_the_documented_strides_and_channels():
    feats = MobileNetV2().eval().features(torch.rand(1, 3, 64, 96))
    assert [(f.shape[1], f.shape[2], f.shape[3]) for f in feats] == [
        (24, 16, 24),
        (32, 8, 12),
        (96, 4, 6),
        (320, 2, 3),
        (1280, 2, 3),
    ]


def test_the_first_depthwise_convolution_stays_fp32_when_the_network_runs_in_bf16():
    torch.manual_seed(0)
    net = MobileNetV2().eval()
    dw = net.blocks[0].layers[0]
    assert dw.precise and not net.stem.precise
    with torch.no_grad():
        dw.weight.mul_(50.0)  # large folded batch-norm weights, as in the pretrained file
    x = torch.rand(1, 32, 8, 8) * 6
    ref = dw(x)
    weight = dw.weight.detach().clone()
    net = net.to(torch.bfloat16)
    assert dw.weight.dtype == torch.float32 and torch.equal(dw.weight, weight)  # not rounded on the way
    assert net.stem.weight.dtype == torch.bfloat16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = dw(x)
    assert out.dtype == torch.float32 and torch.allclose(out, ref)
    with torch.no_grad():
        bf16 = F.relu6(F.conv2d(x.bfloat16(), weight.bfloat16(), dw.bias.bfloat16(), 1, 1, 1, 32)).float()
    assert (bf16 - ref).abs().max() > 0.1  # what it guards against: errors of a tenth of the ReLU6 range


def test_the_pretrained_classifier_sees_a_cat():
    if not TFLITE.is_file():
        pytest.skip("../shared/pretrained is not beside this checkout")
    pytest.importorskip("tflite")
    data = pytest.importorskip("skimage.data")
    import cv2

    from vidcolor.train.pretrained import load_mobilenet_v2

    net = load_mobilenet_v2(TFLITE, classifier=True)
    img = cv2.resize(data.chelsea(), (224, 224), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    with torch.no_grad():
        top5 = net(x).topk(5).indices[0].tolist()
    labels = TFLITE.with_name("imagenet_labels.txt").read_text().splitlines()
    assert any("cat" in labels[i] for i in top5), [labels[i] for i in top5]
