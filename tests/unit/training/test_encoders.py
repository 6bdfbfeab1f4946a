"""Pretrained encoders as frontends: BEATs (asdbench's own network) loading checkpoints in the published format
strictly, transformers' AST and WavLM from save_pretrained folders, pooling, frozen weights out of the state and
the cache keyed by their content, LoRA adapters through peft."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from asdbench.data.feature_cache import frontend_fingerprint
from asdbench.errors import AsdbenchError
from asdbench_plugins.encoders.beats import ITER3, Beats, BeatsConfig, SelfAttention, relative_buckets
from asdbench_plugins.frontends.beats import BeatsFrontend
from asdbench_plugins.frontends.hf_encoder import TransformersEncoder

TINY = {**ITER3, "encoder_layers": 2, "encoder_embed_dim": 32, "encoder_ffn_embed_dim": 64,
        "encoder_attention_heads": 4, "embed_dim": 16, "conv_pos": 16, "conv_pos_groups": 4}


def write_beats(path, seed=0, cfg=TINY, edit=None):
    """A BEATs checkpoint as microsoft/unilm publishes one: ``torch.save({"cfg": ..., "model": state_dict})``."""
    torch.manual_seed(seed)
    weights = Beats(BeatsConfig.of(cfg)).state_dict()
    if edit is not None:
        edit(weights)
    torch.save({"cfg": dict(cfg), "model": weights}, path)
    return path


@pytest.fixture(scope="module")
def beats_file(tmp_path_factory):
    return write_beats(tmp_path_factory.mktemp("beats") / "BEATs_tiny.pt")


def test_the_iter3_network_has_the_papers_90m_parameters_under_the_checkpoints_names():
    """BEATs iter3 is the paper's 90M model. By hand: patch conv 512*256 + LN 1024 + projection 512*768+768 + position
    conv (g 128, v 768*48*128, bias 768) + LN 1536 + 12 layers of 7,088,404 (q, k, v, out 4*(768*768+768), gate
    64*8+8 and 12, two LNs 3072, FFN 768*3072+3072 and 3072*768+768) + one shared bias table 320*12 = 90,311,792."""
    with torch.device("meta"):
        network = Beats(BeatsConfig.of(ITER3))
    assert sum(p.numel() for p in network.parameters()) == 90_311_792
    keys = set(network.state_dict())
    assert {"patch_embedding.weight", "post_extract_proj.weight", "encoder.pos_conv.0.weight_g",
            "encoder.pos_conv.0.weight_v", "encoder.layers.0.self_attn.grep_a",
            "encoder.layers.11.self_attn.grep_linear.bias"} <= keys
    assert "patch_embedding.bias" not in keys  # conv_bias False
    # the relative position table is one module registered in every layer, so the state has it under every layer
    assert all(f"encoder.layers.{i}.self_attn.relative_attention_bias.weight" in keys for i in range(12))


def test_relative_position_buckets_by_hand():
    """320 buckets, 800 frames: 160 per direction (keys after the query from 160), exact below 80, then 80 +
    floor(ln(d / 80) / ln(10) * 80), at most 159."""
    buckets = relative_buckets(1001, 320, 800)
    query = 500
    expected = {0: 0, -1: 1, 1: 161, -79: 79, 79: 239, 80: 240, -80: 80, 100: 160 + 80 + 7, -500: 80 + 63}
    for offset, bucket in expected.items():
        assert buckets[query, query + offset].item() == bucket, offset
    assert math.floor(math.log(100 / 80) / math.log(10) * 80) == 7 and math.floor(math.log(500 / 80) / math.log(10) * 80) == 63
    assert buckets[0, 1000].item() == 160 + 159 and buckets[1000, 0].item() == 159  # beyond max_distance: the last


def test_the_gated_position_bias_scales_the_table_by_1_75_for_a_zero_gate_input():
    """With zero query and key projections the logits are the position bias alone; a gate network of zeros gives
    sigmoid(0) = 0.5 for both gates, and 0.5 * (0.5 * grep_a - 1) + 2 = 1.75 with grep_a = 1. Values pass
    through unchanged (identity projections): each output row is softmax(1.75 * bias row) @ x."""
    cfg = BeatsConfig.of({**TINY, "encoder_embed_dim": 4, "encoder_attention_heads": 1})
    attention = SelfAttention(cfg, None).eval()
    with torch.no_grad():
        for layer in (attention.q_proj, attention.k_proj, attention.grep_linear):
            layer.weight.zero_()
            layer.bias.zero_()
        for layer in (attention.v_proj, attention.out_proj):
            layer.weight.copy_(torch.eye(4))
            layer.bias.zero_()
        x = torch.arange(12.0).reshape(1, 3, 4)
        bias = torch.tensor([[[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]]])
        out = attention(x, bias)
    weights = torch.softmax(1.75 * bias[0], dim=-1)
    torch.testing.assert_close(out[0], weights @ x[0])


def test_a_beats_frontend_pools_by_clip_band_or_frame(beats_file):
    """A 1 s clip: 98 fbank frames (25 ms / 10 ms), 6 time patches of 16, 8 frequency patches of 16 bands."""
    wave = torch.randn(3, 16000)
    shapes = {pooling: BeatsFrontend(16000, str(beats_file), pooling=pooling)(wave).shape
              for pooling in ("mean", "time", "frames")}
    assert shapes == {"mean": (3, 32), "time": (3, 8 * 32), "frames": (3, 6, 32)}
    mean, frames = (BeatsFrontend(16000, str(beats_file), pooling=p)(wave) for p in ("mean", "frames"))
    torch.testing.assert_close(mean, frames.mean(1))
    first = BeatsFrontend(16000, str(beats_file), layer=1)
    assert not torch.allclose(first(wave), mean)  # the first layer's output is not the last's
    with pytest.raises(AsdbenchError, match=r"layer=3 is outside -1..2"):
        BeatsFrontend(16000, str(beats_file), layer=3)


@pytest.mark.parametrize("edit,expected", [
    (lambda w: w.pop("encoder.layers.1.fc2.bias"), r"missing 1 \(encoder.layers.1.fc2.bias\)"),
    (lambda w: w.update({"extra.weight": torch.zeros(1)}), r"unexpected 1 \(extra.weight\)"),
    (lambda w: w.update({"layer_norm.weight": torch.zeros(7)}), r"wrong shape 1 \(layer_norm.weight\)"),
])
def test_a_checkpoint_that_does_not_fit_its_own_cfg_is_one_line_naming_the_keys(tmp_path, edit, expected):
    path = write_beats(tmp_path / "bad.pt", edit=edit)
    with pytest.raises(AsdbenchError, match=f"{tmp_path / 'bad.pt'} does not fit the network its own cfg describes: "
                                            f"{expected}"):
        BeatsFrontend(16000, str(path))


def test_a_file_that_is_no_beats_checkpoint_or_no_file_is_one_line(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(AsdbenchError, match=r"is not a BEATs checkpoint: expected a dict with 'cfg' and 'model'"):
        BeatsFrontend(16000, str(tmp_path / "other.pt"))
    with pytest.raises(AsdbenchError, match="needs checkpoint=PATH"):
        BeatsFrontend(16000)
    with pytest.raises(AsdbenchError, match="does not exist"):
        BeatsFrontend(16000, str(tmp_path / "none.pt"))


def test_a_frozen_encoder_has_no_weights_to_train_and_keeps_only_the_checkpoints_digest_in_its_state(beats_file,
                                                                                                    tmp_path):
    frontend = BeatsFrontend(16000, str(beats_file))
    assert not frontend.has_weights  # its features are cached like a log-mel's
    state = frontend.state_dict()
    assert list(state) == ["checkpoint_sha256"]
    again = BeatsFrontend(16000, str(beats_file))
    again.load_state_dict(state)  # strict: the frozen weights come from the checkpoint
    frontend.train()
    assert not frontend.encoder.training  # no dropout in a frozen encoder's embeddings
    other = BeatsFrontend(16000, str(write_beats(tmp_path / "other.pt", seed=1)))
    with pytest.raises(AsdbenchError, match="trained on a checkpoint with SHA-256"):
        other.load_state_dict(state)


def test_the_cache_key_follows_the_checkpoints_content(beats_file, tmp_path):
    """The same path rewritten with one weight changed is a new key; the same content is the same key."""
    params = {"checkpoint": str(tmp_path / "b.pt")}
    path = write_beats(tmp_path / "b.pt")
    first = frontend_fingerprint(BeatsFrontend(16000, str(path)), "beats", params)
    assert frontend_fingerprint(BeatsFrontend(16000, str(path)), "beats", params) == first

    def nudge(weights):
        weights["encoder.layers.1.fc2.bias"][0] += 1e-3

    write_beats(path, edit=nudge)
    assert frontend_fingerprint(BeatsFrontend(16000, str(path)), "beats", params) != first


def test_lora_trains_only_its_adapters_and_its_state_is_the_adapters(beats_file):
    frontend = BeatsFrontend(16000, str(beats_file), tune="lora", lora_rank=2)
    trainable = {n for n, p in frontend.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert {n.split(".self_attn.")[1].split(".")[0] for n in trainable} == {"q_proj", "v_proj"}
    assert frontend.has_weights
    with torch.no_grad():  # LoRA starts as the identity (B = 0): move it, so that the reload is tested
        for name, p in frontend.named_parameters():
            if ".lora_B." in name:
                p.normal_()
    state = frontend.state_dict()
    assert set(state) == trainable | {"checkpoint_sha256"}
    fresh = BeatsFrontend(16000, str(beats_file), tune="lora", lora_rank=2).eval()
    fresh.load_state_dict(state)
    wave = torch.randn(2, 16000)
    torch.testing.assert_close(fresh(wave), frontend.eval()(wave))
    assert not torch.allclose(BeatsFrontend(16000, str(beats_file)).eval()(wave), fresh(wave))
    with pytest.raises(AsdbenchError, match="lora_targets='nope' names no layer of the encoder"):
        BeatsFrontend(16000, str(beats_file), tune="lora", lora_targets="nope")


def write_ast(folder):
    """A tiny AST as its published checkpoint is saved (ASTForAudioClassification), with its feature extractor."""
    import transformers

    config = transformers.ASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                    max_length=100, num_mel_bins=32, num_labels=3)
    transformers.ASTForAudioClassification(config).save_pretrained(folder)
    transformers.ASTFeatureExtractor(num_mel_bins=32, max_length=100).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def hf_folders(tmp_path_factory):
    """A tiny AST (as its published checkpoint is saved: ASTForAudioClassification) and a tiny WavLM, each with
    its feature extractor, written by save_pretrained."""
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    write_ast(folder / "ast")
    wavlm = transformers.WavLMConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                     conv_dim=(32, 32), conv_stride=(5, 4), conv_kernel=(10, 4),
                                     num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, num_buckets=32,
                                     max_bucket_distance=64)
    transformers.WavLMModel(wavlm).save_pretrained(folder / "wavlm")
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(folder / "wavlm")
    return folder


def test_transformers_encoders_load_from_a_folder_and_pool(hf_folders):
    """AST: 100 frames x 32 bands in patches of 16 at strides 10: 2 bands x 9 steps. WavLM: 16000 samples through
    strides 5 and 4 (kernels 10, 4): 3199 then 799 frames."""
    wave = torch.randn(2, 16000)
    ast = {p: TransformersEncoder(16000, str(hf_folders / "ast"), pooling=p)(wave).shape for p in ("mean", "time", "frames")}
    assert ast == {"mean": (2, 32), "time": (2, 2 * 32), "frames": (2, 9, 32)}
    wavlm = {p: TransformersEncoder(16000, str(hf_folders / "wavlm"), pooling=p)(wave).shape
             for p in ("mean", "frames")}
    assert wavlm == {"mean": (2, 32), "frames": (2, 799, 32)}
    frozen = TransformersEncoder(16000, str(hf_folders / "wavlm"))
    assert not frozen.has_weights and list(frozen.state_dict()) == ["checkpoint_sha256"]
    tuned = TransformersEncoder(16000, str(hf_folders / "ast"), tune="lora", lora_rank=2)
    assert {n for n, p in tuned.named_parameters() if p.requires_grad} == {
        k for k in tuned.state_dict() if "lora_" in k}


@pytest.mark.parametrize("edit,expected", [
    (lambda w: w.pop(next(k for k in w if k.endswith("layernorm.weight"))), "missing 1"),
    (lambda w: w.update({"stray.weight": torch.zeros(2)}), r"unexpected 1 \(stray.weight\)"),
])
def test_a_transformers_folder_whose_weights_do_not_fit_is_one_line(hf_folders, tmp_path, edit, expected):
    import shutil

    folder = tmp_path / "ast"
    shutil.copytree(hf_folders / "ast", folder)
    weights = load_file(folder / "model.safetensors")
    edit(weights)
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(AsdbenchError, match=f"does not fit ASTForAudioClassification, the class its config names: "
                                            f"{expected}"):
        TransformersEncoder(16000, str(folder))
