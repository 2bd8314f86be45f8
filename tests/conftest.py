"""Shared fixtures: synthetic media made with PyAV in tmp folders, and a tiny untrained model."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from vidcolor.model import ColorNet
from vidcolor.record import ModelConfig
from vidcolor.weights import save_model

TINY = ModelConfig(decoder=(8, 8, 8, 16), global_dim=8)


def scene(i: int, w: int, h: int, seed: int = 0, shift: int = 2) -> np.ndarray:
    """A textured RGB picture (h, w, 3) uint8 that moves `shift` px per frame: blobs on a gradient."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    img[..., 0] = 60 + 120 * (xx + i * shift) % w / w
    img[..., 1] = 80 + 100 * yy / h
    img[..., 2] = 120
    for _ in range(6):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(h / 10, h / 4)
        col = rng.uniform(0, 255, 3)
        mask = ((xx - cx - i * shift) ** 2 + (yy - cy) ** 2) < r * r
        img[mask] = col
    return img.clip(0, 255).astype(np.uint8)


def make_video(
    path: Path,
    frames: int = 12,
    size: tuple[int, int] = (64, 48),
    rate: int = 12,
    color: bool = False,
    audio: bool = True,
    codec: str = "libx264",
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    pix_fmt: str | None = None,
    rotation: int = 0,
    gop: int | None = None,
) -> Path:
    """Write a synthetic clip; gray unless color=True; with a 440 Hz tone track unless audio=False; a
    keyframe every `gop` frames (default: the encoder's, only the first in a short clip)."""
    w, h = size
    with av.open(str(path), "w") as c:
        v = c.add_stream(codec, rate=rate)
        v.width, v.height = w, h
        v.pix_fmt = pix_fmt or ("yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p")
        tb = time_base or Fraction(1, rate)
        v.time_base = tb
        v.codec_context.time_base = tb
        if rotation:
            v.set_display_rotation(rotation)
        if gop:
            v.codec_context.gop_size = gop
        a = c.add_stream("aac", rate=22050, layout="mono") if audio else None
        for i in range(frames):
            img = scene(i, w, h)
            if not color:
                img = np.repeat(img.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format=v.pix_fmt)
            f.pts = pts[i] if pts else i
            f.time_base = tb
            c.mux(v.encode(f))
        c.mux(v.encode())
        if a is not None:
            seconds = frames / rate
            t = np.arange(int(seconds * 22050)) / 22050
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for i in range(0, len(tone), 1024):
                af = av.AudioFrame.from_ndarray(tone[i : i + 1024][None], format="fltp", layout="mono")
                af.sample_rate, af.pts = 22050, i
                c.mux(a.encode(af))
            c.mux(a.encode())
    return path


def read_video(path: Path) -> dict:
    """Facts about a file for assertions."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = {"width": v.width, "height": v.height, "rate": v.average_rate, "time_base": v.time_base}
        frames = list(c.decode(video=0))
        info["frames"] = len(frames)
        info["pts"] = [f.pts for f in frames]
        info["times"] = [float(f.time) for f in frames]
        info["rgb"] = [f.to_ndarray(format="rgb24") for f in frames]
        info["rotation"] = frames[0].rotation if frames else 0
    with av.open(str(path)) as c:
        info["audio_packets"] = [(p.pts, bytes(p)) for s in c.streams.audio for p in c.demux(s) if p.size]
        info["audio_streams"] = len(c.streams.audio)
    return info


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """An untrained, tiny network saved like the shipped one (safetensors + json)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    net = ColorNet(TINY).eval()
    with torch.no_grad():  # untrained logits are near-flat; sharpen them so colours follow the picture
        net.logits.weight.mul_(40.0)
    save_model(net, path)
    return path


@pytest.fixture()
def gray_clip(tmp_path) -> Path:
    return make_video(tmp_path / "clip.mp4")


def make_archival(
    path: Path,
    codec: str,
    size: tuple[int, int],
    rate,
    pix_fmt: str,
    frames: int = 6,
    fmt: str | None = None,
    audio_codec: str = "pcm_s16le",
) -> Path:
    """An archival-style transfer (DV, MJPEG) with 48 kHz stereo PCM audio, as capture cards write them."""
    w, h = size
    with av.open(str(path), "w", format=fmt) as c:
        v = c.add_stream(codec, rate=rate)
        v.width, v.height, v.pix_fmt = w, h, pix_fmt
        a = c.add_stream(audio_codec, rate=48000, layout="stereo")
        for i in range(frames):
            img = np.repeat(scene(i, w, h).mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
            c.mux(v.encode(av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format=pix_fmt)))
        c.mux(v.encode())
        n = int(48000 * frames / float(rate))
        tone = (np.sin(np.arange(n) / 10) * 8000).astype(np.int16)
        stereo = np.stack([tone, tone]).T.reshape(1, -1).copy()
        for i in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(stereo[:, 2 * i : 2 * (i + 1024)], format="s16", layout="stereo")
            af.sample_rate, af.pts = 48000, i
            c.mux(a.encode(af))
        c.mux(a.encode())
    return path
