"""The pretrained encoder: the TFLite reader rebuilds a working ImageNet classifier; SAME padding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

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
