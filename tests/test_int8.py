"""The int8 engine (vidcolor/int8.py): made from weights by vidcolor.train quantize, chosen by --engine,
deterministic, and close to the fp32 network it was made from."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace

import av
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vidcolor.cli import app
from vidcolor.errors import VidcolorError
from vidcolor.inference import GUESSES_KEPT, Colorizer
from vidcolor.pipeline import ColorizeOptions, colorize_video
from vidcolor.record import default_model_path, read_weights
from vidcolor.reference import ReferenceMatch
from vidcolor.torchnet import TorchNet
from vidcolor.video import EncodeOptions

from .conftest import make_video, scene

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def tiny_int8(tiny_model, tmp_path_factory):
    """The tiny network's copy with its int8 engine, calibrated on a few synthetic pictures."""
    from PIL import Image

    from vidcolor.train.quantize import quantize_weights

    folder = tmp_path_factory.mktemp("int8")
    weights = folder / "tiny.safetensors"
    shutil.copy(tiny_model, weights)
    shutil.copy(tiny_model.with_suffix(".json"), weights.with_suffix(".json"))
    photos = []
    for i in range(6):
        photos.append(folder / f"p{i}.png")
        Image.fromarray(scene(i, 96, 64, seed=i)).save(photos[-1])
    quantize_weights(weights, photos, "6 synthetic pictures")
    return weights


def frames_of(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24").astype(np.int16) for f in c.decode(video=0)]


def test_quantize_names_its_file_and_weights_in_the_record(tiny_int8):
    record = read_weights(tiny_int8)
    assert record.int8.file == "tiny.int8.onnx" and (tiny_int8.parent / record.int8.file).is_file()
    assert len(record.int8.weights_sha256) == 64 and record.int8.calibration == "6 synthetic pictures"
    assert record.model == read_weights(tiny_int8).model  # the rest of the record is kept


def test_engine_auto_takes_int8_on_a_cpu_and_torch_takes_torch(tiny_int8):
    assert Colorizer.load(tiny_int8, "cpu").engine == "int8"
    torch_engine = Colorizer.load(tiny_int8, "cpu", engine="torch")
    assert isinstance(torch_engine.net, TorchNet) and torch_engine.engine in ("torch", "fp32")
    fp32 = Colorizer.load(tiny_int8, "cpu", engine="fp32")
    assert isinstance(fp32.net, TorchNet) and fp32.net.dtype == torch.float32 and fp32.engine == "fp32"


def test_int8_body_gives_the_networks_shapes_at_any_size(tiny_int8):
    col = Colorizer.load(tiny_int8, "cpu", engine="int8")
    model = Colorizer.load(tiny_int8, "cpu", engine="fp32").net.model
    for h, w in ((64, 96), (96, 64), (128, 160)):
        x = torch.rand(2, 3, h, w)
        got, want = col.net.body(x.numpy(), 1), model.body(x)
        assert [t.shape for t in got] == [tuple(t.shape) for t in want]


def hinted_picture(h: int, w: int) -> np.ndarray:
    """(h, w, 3) float32: a colour scene with gray holes in 8 px squares (fed-back colours with occlusions)."""
    rgb = scene(5, w, h).astype(np.float32) / 255
    holes = (np.random.default_rng(0).random((-(-h // 8), -(-w // 8))) < 0.3).repeat(8, 0).repeat(8, 1)[:h, :w]
    return np.where(holes[..., None], rgb.mean(-1, keepdims=True), rgb).astype(np.float32)


@pytest.mark.parametrize("size", [(64, 96), (72, 128)])
def test_int8_heads_numpy_gate_and_decoding_give_the_torch_ones_outputs(tiny_int8, size):
    """The int8 engine's hint gate and decoding (numpy, int8.Head) against the torch network's, on the
    same int8 body's outputs: gray, hinted, trusted, and matched to a reference's colours."""
    col = Colorizer.load(tiny_int8, "cpu", engine="int8")
    model = Colorizer.load(tiny_int8, "cpu", engine="fp32").net.model
    with torch.no_grad():  # open the gates: a new tiny network's barely follow a hint
        model.hint.gate.bias += 0.3
    col.net.head.bias = model.hint.gate.bias.detach().numpy().copy()
    h, w = size

    def torch_head(rgb, trusted, match):
        def body(x):
            return tuple(torch.from_numpy(t) for t in col.net.body(x.numpy(), 1))

        x = torch.from_numpy(rgb[None]).permute(0, 3, 1, 2)
        with torch.no_grad():
            ab, conf, reg = model.colorize_ab(x, col.decode, match, trusted, body)
            out = torch.nn.functional.interpolate(
                torch.cat((ab, conf, reg), 1), size=(h, w), mode="bilinear", align_corners=False
            )
        return out[0].permute(1, 2, 0).numpy()

    gray = np.repeat(hinted_picture(h, w).mean(-1, keepdims=True), 3, -1)
    target = np.full(len(col.bins), 1.0 / len(col.bins), np.float32)
    target[:5] *= 20
    target /= target.sum()
    for rgb, trusted, ref in (
        (gray, False, False),
        (hinted_picture(h, w), False, False),
        (hinted_picture(h, w), True, False),
        (gray, False, True),
    ):
        got = col.net.run(rgb[None], col.decode, ReferenceMatch(target) if ref else None, trusted, 1)[0]
        want = torch_head(rgb, trusted, ReferenceMatch(target) if ref else None)
        assert np.abs(got - want).max() < 2e-3, (trusted, ref, np.abs(got - want).max())
        if rgb is not gray:
            assert np.abs(got[..., 3:] - torch_head(gray, trusted, None)[..., 3:]).max() > 0.1  # the gate really moved it
    dist = col.distribution(hinted_picture(h, w))
    with torch.no_grad():
        x = torch.from_numpy(np.pad(hinted_picture(h, w), ((0, (-h) % 32), (0, (-w) % 32), (0, 0)), mode="edge")[None]).permute(
            0, 3, 1, 2
        )
        logits = model(x, False, lambda t: tuple(torch.from_numpy(a) for a in col.net.body(t.numpy(), 1)))[0][
            0, :, : h // 4, : w // 4
        ]
        want = torch.softmax(logits - (1 - col.decode.saturation) * torch.log(model.colors.class_weights)[:, None, None], 0)
    assert dist.shape == tuple(want.shape) and np.abs(dist - want.numpy()).max() < 1e-4


def test_int8_heads_constants_are_the_torch_networks():
    from vidcolor import int8, model

    for name in ("FILL_SIGMA", "REACH", "FILL_LIGHTNESS", "FILL_RADIUS", "FILL_STEP", "HINT_CHROMA"):
        assert getattr(int8, name) == getattr(model, name), name
    assert (int8.GAIN, int8.FAR, int8.MULTIPLE) == (model.HintGate.GAIN, model.HintGate.FAR, model.ColorNet.multiple)


def test_a_run_on_the_int8_engine_never_imports_torch(tiny_int8, gray_clip, tmp_path):
    """The default engine on a CPU runs without torch (195 MB and a second to load): with torch made
    unimportable, vidcolor still colours the clip, on int8."""
    import subprocess

    out = tmp_path / "o.mkv"
    code = (
        "import sys; sys.modules['torch'] = None; from vidcolor.cli import main; "
        f"sys.argv = ['vidcolor', {str(gray_clip)!r}, '-o', {str(out)!r}, '--model', {str(tiny_int8)!r}, '--codec', 'ffv1', '-q']; main()"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(frames_of(out)) == len(frames_of(gray_clip))
    code = code.replace("'-q']", "'-q', '--engine', 'fp32']")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode != 0  # the torch engine does need it: the check above is not vacuous


def test_int8_frames_are_deterministic_whatever_the_thread_count(tiny_int8):
    col = Colorizer.load(tiny_int8, "cpu", engine="int8")
    rgb = scene(3, 96, 64).astype(np.float32) / 255
    one = col.predict(rgb, threads=1)
    for threads in (1, 2):
        again = col.predict(rgb, threads=threads)
        assert all(np.array_equal(a, b) for a, b in zip(one, again, strict=True))


def test_weights_changed_after_quantizing_do_not_use_the_stale_int8(tiny_int8, tmp_path):
    weights = tmp_path / tiny_int8.name
    for suffix in (".safetensors", ".json", ".int8.onnx"):
        shutil.copy(tiny_int8.with_name(tiny_int8.stem + suffix), weights.with_name(weights.stem + suffix))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # a weight's last bit: still a safetensors file, no longer the one quantized
    weights.write_bytes(bytes(data))
    assert Colorizer.load(weights, "cpu").engine != "int8"
    with pytest.raises(VidcolorError, match="made from other weights"):
        Colorizer.load(weights, "cpu", engine="int8")


def test_an_unreadable_int8_file_falls_back_to_torch_or_says_so_in_one_line(tiny_int8, tmp_path):
    weights = tmp_path / tiny_int8.name
    for suffix in (".safetensors", ".json"):
        shutil.copy(tiny_int8.with_name(tiny_int8.stem + suffix), weights.with_name(weights.stem + suffix))
    weights.with_name(weights.stem + ".int8.onnx").write_bytes(b"not an onnx file" * 64)
    assert Colorizer.load(weights, "cpu").engine != "int8"
    with pytest.raises(VidcolorError, match="not an ONNX file ONNX Runtime can read") as e:
        Colorizer.load(weights, "cpu", engine="int8")
    assert "\n" not in str(e.value)


def test_engine_int8_without_an_int8_network_is_one_line(tiny_model, gray_clip, tmp_path):
    result = CliRunner().invoke(
        app, [str(gray_clip), "-o", str(tmp_path / "o.mp4"), "--model", str(tiny_model), "--engine", "int8"]
    )
    assert result.exit_code != 0
    assert "has no int8 network" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o.mp4").exists()
    result = CliRunner().invoke(app, [str(gray_clip), "-o", str(tmp_path / "o.mp4"), "--engine", "int9"])
    assert result.exit_code != 0 and "unknown engine 'int9'" in result.output


@pytest.mark.slow
@pytest.mark.skipif(not read_weights(default_model_path()).int8.file, reason="the shipped weights have no int8 network")
def test_the_shipped_int8_engine_agrees_with_fp32_on_a_generated_clip(tmp_path):
    """The shipped network, whole pipeline (feedback, look-ahead): int8 against torch fp32, frame by frame.
    Tolerance: the mean RGB difference under 4 levels of 255 and 99 % of pixels within 12 (the colours
    alone differ: the gray is the input's). On this clip torch's own bf16 differs from fp32 by 2.2 levels
    on average, int8 by 2.6 (AMD EPYC, AVX-512 VNNI)."""
    clip = make_video(tmp_path / "clip.mp4", frames=12, size=(128, 72), color=False, audio=False)
    runs = {}
    for engine in ("int8", "fp32"):
        out = tmp_path / f"{engine}.mkv"
        colorize_video(clip, out, ColorizeOptions(engine=engine, encode=EncodeOptions(codec="ffv1"), segment=0))
        runs[engine] = np.stack(frames_of(out))
    diff = np.abs(runs["int8"] - runs["fp32"])
    assert diff.mean() < 4.0, diff.mean()
    assert np.quantile(diff, 0.99) <= 12, np.quantile(diff, 0.99)
    assert diff.max() > 0  # the engines really differ: the option is not ignored


def test_engine_option_changes_the_frames_and_int8_repeats_them_exactly(tiny_int8, tmp_path):
    clip = make_video(tmp_path / "clip.mp4", frames=12, size=(96, 64), audio=False)
    outs = {}
    for engine in ("int8", "fp32"):
        out = tmp_path / f"{engine}.mkv"
        result = CliRunner().invoke(
            app,
            [
                str(clip),
                "-o",
                str(out),
                "--model",
                str(tiny_int8),
                "--engine",
                engine,
                "--codec",
                "ffv1",
                "-q",
                "--segment",
                "0.5",
            ],
        )
        assert result.exit_code == 0, result.output
        outs[engine] = frames_of(out)
    assert any(not np.array_equal(a, b) for a, b in zip(outs["int8"], outs["fp32"], strict=True))
    again = tmp_path / "again.mkv"
    colorize_video(
        clip, again, replace(ColorizeOptions(), model=tiny_int8, engine="int8", encode=EncodeOptions(codec="ffv1"), segment=0)
    )
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(again), outs["int8"], strict=True))


def test_parts_made_on_another_engine_are_not_reused(tiny_int8, tmp_path):
    clip = make_video(tmp_path / "clip.mp4", frames=36, size=(96, 64), audio=False, gop=6)  # 3 segments of 1 s
    out = tmp_path / "out.mkv"
    options = ColorizeOptions(model=tiny_int8, engine="int8", segment=1.0, encode=EncodeOptions(codec="ffv1"))

    def stop_after(n):
        def progress(p):
            if p.frames >= n:
                raise KeyboardInterrupt

        return progress

    with pytest.raises(KeyboardInterrupt):
        colorize_video(clip, out, options, progress=stop_after(14))
    manifest = json.loads(next(tmp_path.glob(".out.mkv.parts/manifest.json")).read_text())
    assert manifest["settings"]["engine"] == "int8"
    summary = colorize_video(clip, out, replace(options, engine="fp32"))
    assert any("another input, settings or model" in n for n in summary.notices)


def test_quantize_command_calibrates_on_training_photos_only(tiny_model, tmp_path):
    """python -m vidcolor.train quantize WEIGHTS --data-dir D --count N: the held-out split is never
    calibrated on, and the record says how many photos were."""
    from PIL import Image

    from vidcolor.train.commands import app as train_app
    from vidcolor.train.data import file_digest, is_held_out

    weights = tmp_path / "w.safetensors"
    shutil.copy(tiny_model, weights)
    shutil.copy(tiny_model.with_suffix(".json"), weights.with_suffix(".json"))
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(40):
        Image.fromarray(scene(i, 96, 64, seed=i)).save(photos / f"{i}.png")
    held = sum(is_held_out(file_digest(p), 60) for p in photos.iterdir())
    assert held > 0  # the split has something to leave out
    result = CliRunner().invoke(train_app, ["quantize", str(weights), "--data-dir", str(photos), "--count", "100"])
    assert result.exit_code == 0, result.output
    assert read_weights(weights).int8.calibration == f"{40 - held} training photos of photos, seed 0"
    assert Colorizer.load(weights, "cpu").engine == "int8"


def test_without_onnxruntime_auto_runs_torch_and_int8_says_what_to_install(tiny_int8, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed: import raises
    assert Colorizer.load(tiny_int8, "cpu").engine != "int8"
    with pytest.raises(VidcolorError, match="pip install onnxruntime"):
        Colorizer.load(tiny_int8, "cpu", engine="int8")


@pytest.mark.parametrize("engine", ["int8", "fp32"])
def test_guess_is_the_shown_gray_output_and_the_bodys_features_on_every_engine(tiny_int8, engine):
    """Colorizer.guess (what a user's points move, hints.move_guess): on a gray input, the colours predict
    shows and the features of the body that the engine runs, at a size that is not a multiple of 4."""
    col = Colorizer.load(tiny_int8, "cpu", engine=engine)
    h, w = 70, 126
    gray = np.repeat(hinted_picture(h, w).mean(-1, keepdims=True), 3, -1)
    ab, feats = col.guess(gray)
    assert ab.shape == (h, w, 2) and feats.shape[1:] == (-(-h // 4), -(-w // 4))
    assert np.abs(ab - col.predict(gray)[0][..., :2]).max() < 1e-3
    padded = np.pad(gray, ((0, (-h) % 32), (0, (-w) % 32), (0, 0)), mode="edge")[None].transpose(0, 3, 1, 2)
    if engine == "int8":
        want = col.net.body(np.ascontiguousarray(padded), 1)[2][0]
    else:
        with torch.no_grad():
            want = col.net.model.body(torch.from_numpy(np.ascontiguousarray(padded)))[2][0].numpy()
    assert np.abs(feats - want[:, : feats.shape[1], : feats.shape[2]]).max() < 1e-4


def test_guess_keeps_the_last_frames_answers_and_only_those(tiny_int8):
    col = Colorizer.load(tiny_int8, "cpu", engine="int8")
    calls: list = []
    real = col.net.guess

    def counted(*args):
        calls.append(1)
        return real(*args)

    col.net.guess = counted
    a = np.repeat(hinted_picture(64, 96).mean(-1, keepdims=True), 3, -1)
    b = a[::-1].copy()
    first = col.guess(a)
    assert col.guess(a.copy()) is first and len(calls) == 1  # the same frame again: no second pass
    assert col.guess(b) is not first and len(calls) == 2
    assert col.guess(a) is first and len(calls) == 2  # a frame stepped back to: still kept
    for i in range(GUESSES_KEPT):  # as many other frames: the first is forgotten
        col.guess(np.roll(a, i + 1, axis=1))
    col.guess(a)
    assert len(calls) == 3 + GUESSES_KEPT
    with pytest.raises(ValueError):  # read-only: a caller cannot change what the next one gets
        first[0][0, 0, 0] = 1.0
