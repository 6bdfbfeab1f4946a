"""Pretrained encoders at their published sizes (random weights in the published formats: the cost does not depend
on the values): embedding throughput of a frozen encoder, the training step of LoRA adapters, peak memory, and the
cost of each protocol on a DCASE 2023-sized data set. Each encoder runs in a fresh process, so its peak is its own.

    python benchmarks/encoders.py [--clips 4] [--seconds 10] [--encoders beats,ast,wavlm]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

TRAIN_CLIPS, TEST_CLIPS = 7 * 1000, 7 * 200  # DCASE 2023 Task 2 development set: 7 types, 1,000 + 200 clips each
LORA_EPOCHS = 10  # beats-lora's recipe


def build(name: str, folder: Path, tune: str):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))
    from asdbench_plugins.encoders.beats import ITER3, Beats, BeatsConfig
    from asdbench_plugins.frontends.beats import BeatsFrontend
    from asdbench_plugins.frontends.hf_encoder import TransformersEncoder

    if name == "beats":
        path = folder / "BEATs_iter3.pt"
        if not path.exists():
            torch.save({"cfg": ITER3, "model": Beats(BeatsConfig.of(ITER3)).state_dict()}, path)
        return BeatsFrontend(16000, str(path), tune=tune)
    import transformers

    path = folder / name
    if not path.exists():
        if name == "ast":  # MIT/ast-finetuned-audioset-10-10-0.4593's architecture
            transformers.ASTForAudioClassification(transformers.ASTConfig(num_labels=527)).save_pretrained(path)
            transformers.ASTFeatureExtractor().save_pretrained(path)
        else:  # microsoft/wavlm-base-plus's
            transformers.WavLMModel(transformers.WavLMConfig()).save_pretrained(path)
            transformers.Wav2Vec2FeatureExtractor().save_pretrained(path)
    return TransformersEncoder(16000, str(path), tune=tune)


def measure(name: str, folder: Path, clips: int, seconds: float) -> dict:
    torch.manual_seed(0)
    wave = torch.randn(clips, int(seconds * 16000)) * 0.1
    frozen = build(name, folder, "none").eval()
    params = sum(p.numel() for p in frozen.encoder.parameters())
    with torch.no_grad():
        frozen(wave[:1])  # warm-up
        start = time.perf_counter()
        frozen(wave)
        embed = clips / (time.perf_counter() - start)
    del frozen
    tuned = build(name, folder, "lora").train()
    adapters = sum(p.numel() for p in tuned.parameters() if p.requires_grad)
    start = time.perf_counter()
    tuned(wave).square().mean().backward()
    step = clips / (time.perf_counter() - start)
    return {"encoder": name, "params": params, "adapters": adapters, "embed_clips_s": embed, "lora_clips_s": step,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--encoders", default="beats,ast,wavlm")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, Path(args.folder), args.clips, args.seconds)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.clips} clips of {args.seconds:g} s")
    print(f"{'encoder':8} {'params':>12} {'LoRA':>8} {'embed clips/s':>14} {'LoRA step clips/s':>18} {'peak MB':>8} "
          f"{'frozen h':>9} {'LoRA h':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.encoders.split(","):
            out = subprocess.run([sys.executable, __file__, "--one", name, "--folder", folder, "--clips",
                                  str(args.clips), "--seconds", str(args.seconds)], capture_output=True, text=True)
            if out.returncode:
                print(f"{name}: failed: {out.stderr.strip().splitlines()[-1]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            frozen_h = (TRAIN_CLIPS + TEST_CLIPS) / r["embed_clips_s"] / 3600  # one pass, then any back-end
            lora_h = (LORA_EPOCHS * TRAIN_CLIPS / r["lora_clips_s"] + (TRAIN_CLIPS + TEST_CLIPS) / r["embed_clips_s"]) / 3600
            print(f"{name:8} {r['params']:>12,} {r['adapters']:>8,} {r['embed_clips_s']:>14.2f} "
                  f"{r['lora_clips_s']:>18.2f} {r['peak_mb']:>8,.0f} {frozen_h:>9.1f} {lora_h:>8.1f}")


if __name__ == "__main__":
    main()
