"""``hf-encoder``: an audio encoder that ``transformers`` provides (AST, WavLM, HuBERT, wav2vec 2.0...), loaded from a
local folder as ``save_pretrained`` writes it (config.json, the weights, preprocessor_config.json), frozen or tuned
(:mod:`asdbench_plugins.frontends.pretrained`).

The folder's model is built as the class its config names (``architectures``: ASTForAudioClassification for the
published AST, WavLMModel...), so every weight in the file is used; a key the class does not have, or one it lacks,
is one line. The features are the folder's own feature extractor's (AST: its Kaldi fbank, padded to ``max_length``
frames; WavLM, HuBERT: the normalised waveform)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from asdbench import hookimpl
from asdbench.errors import AsdbenchError
from asdbench_plugins.encoders.strict import key_problems
from asdbench_plugins.frontends.pretrained import PretrainedEncoder, checkpoint_path, chosen_depth, files_sha256

AST = "audio-spectrogram-transformer"


def _load(folder: Path):
    try:
        import transformers
    except ImportError:
        raise AsdbenchError("frontend 'hf-encoder' needs transformers: pip install 'asdbench[encoders]'") from None
    transformers.utils.logging.disable_progress_bar()  # its per-load tqdm bar; asdbench reports progress itself
    if not folder.is_dir():
        raise AsdbenchError(f"frontend 'hf-encoder': checkpoint {folder} is not a folder (a model saved with "
                            "save_pretrained: config.json, weights, preprocessor_config.json)")
    try:
        config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
        architecture = (config.architectures or [""])[0]
        model_class = getattr(transformers, architecture, None) or transformers.AutoModel
        model, info = model_class.from_pretrained(folder, local_files_only=True, output_loading_info=True)
        extractor = transformers.AutoFeatureExtractor.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise AsdbenchError(f"frontend 'hf-encoder': {folder} is not a loadable transformers model: "
                            f"{str(exc).strip().splitlines()[0][:200]}") from None
    problems = key_problems(info.get("missing_keys") or [], info.get("unexpected_keys") or [],
                            info.get("mismatched_keys") or [])
    if problems:
        raise AsdbenchError(f"{folder} does not fit {type(model).__name__}, the class its config names: {problems}")
    return model.base_model, extractor


class TransformersEncoder(PretrainedEncoder):
    """Embeddings of a transformers audio encoder, of the output of ``layer`` layers (-1: the model's output, after
    any final norm): the mean over its patches or frames (``pooling=mean``), AST's frequency patches each averaged
    over time (``time``; a speech model has one band), or one vector per time step (``frames``)."""

    def __init__(self, sample_rate: int, checkpoint: str = "", layer: int = -1, pooling: str = "mean",
                 tune: str = "none", lora_rank: int = 8, lora_alpha: float = 16.0, lora_dropout: float = 0.0,
                 lora_targets: str = "query,value,q_proj,v_proj") -> None:
        folder = checkpoint_path(checkpoint, "hf-encoder", "a folder a transformers model was saved to")
        encoder, extractor = _load(folder)
        chosen_depth("hf-encoder", layer, encoder.config.num_hidden_layers)
        files = [p for p in folder.iterdir() if p.is_file()]
        super().__init__("hf-encoder", sample_rate, int(extractor.sampling_rate), encoder, files_sha256(files), tune,
                         pooling, lora_rank, lora_alpha, lora_dropout, lora_targets)
        self.extractor, self.layer = extractor, layer

    def tokens(self, wave: torch.Tensor) -> torch.Tensor:
        clips = list(wave.detach().float().cpu().numpy().astype(np.float32))
        values = self.extractor(clips, sampling_rate=self.encoder_rate, return_tensors="pt")["input_values"]
        weight = next(self.encoder.parameters())
        out = self.encoder(values.to(weight.device, weight.dtype), output_hidden_states=self.layer != -1)
        return out.last_hidden_state if self.layer == -1 else out.hidden_states[self.layer]

    def grid(self, tokens: torch.Tensor) -> torch.Tensor:
        config = self.encoder.config
        if config.model_type != AST:
            return tokens.unsqueeze(2)  # a speech model's frames: one band
        bands = (config.num_mel_bins - config.patch_size) // config.frequency_stride + 1
        steps = (config.max_length - config.patch_size) // config.time_stride + 1
        patches = tokens[:, tokens.shape[1] - bands * steps:]  # after the class and distillation tokens
        return patches.reshape(tokens.shape[0], bands, steps, tokens.shape[2]).transpose(1, 2)  # frequency-major


@hookimpl
def register_frontends(register):
    register("hf-encoder", TransformersEncoder, "an audio encoder of transformers (AST, WavLM, HuBERT) from a "
             "local folder, frozen or LoRA-tuned")
