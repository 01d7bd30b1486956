"""Classify one video among free-text labels.

    python -m claver.predict VIDEO --labels "jumping,running,waving" --checkpoint runs/x/model.safetensors
    python -m claver.predict VIDEO --labels-file labels.txt --arch ViT-B-16 --pretrained openai
    python -m claver.predict VIDEO --labels-file hmdb51 --checkpoint C --prompts hmdb51

Prints the top-k labels with their probabilities. With ``--prompts``, the labels the prompt file
describes are scored with its descriptions as well as the templates, the others with the
templates, as in evaluation. Text embeddings of a label set are computed once per
:class:`Predictor`. Both encoders run under bf16 autocast, as evaluation does by default
(``optim.amp``); ``--amp none`` keeps float32 throughout. ``--decoder`` chooses the video backend
(default auto: torchcodec where it reads the file exactly, else PyAV; see claver.data.video).
"""

from __future__ import annotations

if not __package__:  # run by its path (python claver/predict.py): no package for the imports below
    import _script

    _script.run_as_module(__file__)

import argparse
import math
import os
import sys
from pathlib import Path
from typing import NoReturn

import torch

from .config import ClaverConfig
from .data.video import BACKENDS, DecodeError, choose_backend, eval_indices, open_video, probe
from .factory import create_model, get_tokenizer, load_checkpoint, video_transforms
from .labels import DATASETS, class_names
from .model import CLAVER
from .text import prompt_tokens
from .train_config import AMP_DTYPES, OptimConfig, amp_dtype


class Predictor:
    """A model with the prompt-set embeddings of one label set, ready for videos.

    ``prompts``: a prompt file or shipped name whose descriptions join the templates, as in
    evaluation (:func:`claver.text.prompt_tokens`). ``amp``: the autocast dtype of both encoders
    (None: float32 throughout), as evaluation's ``optim.amp``; scores are computed in float32
    either way (:meth:`CLAVER.class_probs`). ``decoder``: the video backend
    (:func:`claver.data.video.choose_backend`)."""

    def __init__(
        self,
        model: CLAVER,
        labels: list[str],
        prompts: str | Path | None = None,
        amp: torch.dtype | None = None,
        decoder: str | None = None,
    ):
        if not labels:
            raise ValueError("no labels given")
        self.model, self.labels, self.amp = model.eval(), list(labels), amp
        self.decoder = choose_backend(decoder)
        self.device = next(model.parameters()).device
        tokens = prompt_tokens(self.labels, prompts, get_tokenizer(model.config.arch))
        with torch.no_grad(), self._autocast():
            self.text = model.encode_text(tokens.to(self.device), normalize=True)  # (A, C, E), once
        self.transform = video_transforms(model)[1]  # the model's image size and normalisation

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None)

    @torch.no_grad()
    def probs(self, video: str | Path) -> torch.Tensor:
        """The class probabilities of a video, float32 ``(len(labels),)`` on the model's device;
        :class:`DecodeError` for a video that cannot be read."""
        with open_video(video, self.decoder) as v:  # only the T sampled frames are decoded, at the model's size
            idx = eval_indices(v.info.num_frames, self.model.frames, 1)[0]
            frames = v.read(idx, size=self.transform.config.input_size)
        clip = self.transform(torch.from_numpy(frames).permute(0, 3, 1, 2))  # (1, T, 3, S, S)
        with self._autocast():
            emb = self.model.encode_video(clip.to(self.device))
        return self.model.class_probs(emb, self.text)[0]

    def __call__(self, video: str | Path, top_k: int = 5) -> list[tuple[str, float]]:
        """Top-k (label, probability); :class:`DecodeError` for a video that cannot be read."""
        top = self.probs(video).topk(min(top_k, len(self.labels)))
        return [(self.labels[i], p) for p, i in zip(top.values.tolist(), top.indices.tolist())]


def predict(video: str | Path, labels: list[str], model: CLAVER, top_k: int = 5) -> list[tuple[str, float]]:
    """One-off prediction; keep a :class:`Predictor` to classify many videos with one label set."""
    return Predictor(model, labels)(video, top_k)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("video")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--labels", help="comma-separated labels")
    src.add_argument("--labels-file", help="one label per line, an 'id,name' CSV, or a shipped list name")
    ap.add_argument("--checkpoint", help="CLAVER checkpoint (.safetensors with its .json)")
    ap.add_argument("--arch", default=ClaverConfig.arch, help="with --pretrained (a checkpoint brings its own arch)")
    ap.add_argument("--pretrained", help="'openai' or a local image-CLIP checkpoint")
    ap.add_argument("--frames", type=int, default=ClaverConfig.frames)
    ap.add_argument(
        "--prompts", help="prompt file or shipped name: descriptions for the labels it describes, as in evaluation"
    )
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument(
        "--amp", default=OptimConfig.amp or "none", choices=[k or "none" for k in AMP_DTYPES],
        help=f"autocast dtype of the encoders, as evaluation's optim.amp (default {OptimConfig.amp}); none: float32",
    )  # fmt: skip
    ap.add_argument("--decoder", default="auto", choices=["auto", *BACKENDS], help="video backend (default auto)")
    args = ap.parse_args(argv)
    try:
        probe(args.video, args.decoder)  # a bad file fails here, before any model is loaded
    except (DecodeError, ValueError) as e:
        _fail(e)
    if args.labels:
        labels = [s.strip() for s in args.labels.split(",") if s.strip()]
    elif args.labels_file in DATASETS or str(args.labels_file).endswith(".csv"):
        labels = class_names(args.labels_file)
    else:
        labels = [s.strip() for s in Path(args.labels_file).read_text().splitlines() if s.strip()]
    if args.checkpoint:
        try:
            model = load_checkpoint(args.checkpoint)
        except (ValueError, FileNotFoundError) as e:
            _fail(e)
    elif args.pretrained:
        model = create_model(args.arch, args.pretrained, frames=args.frames)
    else:
        ap.error("give --checkpoint, or --pretrained for zero-shot with image-CLIP weights")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    amp = amp_dtype(None if args.amp == "none" else args.amp)
    try:  # the labels and the prompt file
        predictor = Predictor(model.to(device), labels, args.prompts, amp, args.decoder)
    except (ValueError, FileNotFoundError) as e:
        _fail(e)
    try:
        top = predictor(args.video, args.top_k)
    except DecodeError as e:
        _fail(e)
    if not all(math.isfinite(p) for _, p in top):
        _fail(ValueError(f"the model ({args.checkpoint or args.pretrained}) gives non-finite scores for {args.video}"))
    for label, p in top:
        print(f"{p:7.2%}  {label}")


def _fail(e: Exception) -> NoReturn:
    """A video, label list, prompt file or checkpoint that cannot be used: one line (it names the
    problem), status 2."""
    print(f"claver.predict: {e}", file=sys.stderr)
    sys.exit(2)


def cli() -> None:
    """The command (``python -m claver.predict``, ``claver-predict``): :func:`main`, then an exit
    that skips the interpreter's teardown of what the imports loaded (Triton's compiler, which
    torchvision imports through torch._dynamo, takes about a second to unload); the answer is
    printed and nothing is left to write but the standard streams."""
    main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    cli()
