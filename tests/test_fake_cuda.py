"""claver on CUDA tensors without a GPU: the training forward, the evaluation forward and the
Predictor under FakeTensorMode on device "cuda", with bf16 autocast. Fake tensors carry shapes,
dtypes and devices but no data, so a tensor left on the CPU or a device mismatch anywhere raises, and
kron_attn's GPU op runs its fake kernel. torch.autocast refuses "cuda" where no GPU is visible: the
tests tell it one with bf16 is there (nothing else asks)."""

import contextlib
import unittest.mock

import numpy as np
import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

import claver
from claver.data.transforms import RawClips, finish
from claver.data.video import write_mp4
from claver.engine import Dist, predict_probs
from claver.predict import Predictor
from claver.text import prompt_set_loss
from kron_attn import backends

CUDA = torch.device("cuda", 0)


@pytest.fixture
def fake():
    """A FakeTensorMode, with the backends kron_attn chooses recorded."""
    chosen = []
    choose = backends.choose

    def record(*args, **kwargs):
        b = choose(*args, **kwargs)
        chosen.append(b.name)
        return b

    with FakeTensorMode(allow_non_fake_inputs=True), unittest.mock.patch.object(backends, "choose", record):
        yield chosen


@contextlib.contextmanager
def autocast_sees_a_gpu():
    """torch.autocast("cuda") and torch.autocast's bf16 check believe a bf16 GPU is there. Only
    around the forwards: moving real tensors to "cuda" must not believe it."""
    with (
        unittest.mock.patch("torch.cuda.is_available", return_value=True),
        unittest.mock.patch("torch.cuda.is_bf16_supported", return_value=True),
    ):
        yield


@pytest.fixture
def model():
    """A tiny CLAVER, built (with real tensors) before the fake mode starts."""
    return claver.create_model("claver-tiny", frames=3)


def on_fake_cuda(*xs):
    for x in xs:
        assert isinstance(x, FakeTensor) and x.device == CUDA, (type(x), x.device)


def test_training_forward(model, fake):
    model = model.train().to(CUDA)
    clips = RawClips(torch.randint(0, 255, (2, 3, 3, 32, 32), dtype=torch.uint8))
    x = finish(clips, model.config.normalization, CUDA)
    tokens = torch.randint(1, 1000, (2, 4, 77)).to(CUDA)
    with autocast_sees_a_gpu(), torch.autocast("cuda", dtype=torch.bfloat16):
        logits = model(x, tokens)
    loss = prompt_set_loss(logits.float(), torch.tensor([0, 3]).to(CUDA))
    on_fake_cuda(logits, loss)
    assert logits.dtype == torch.bfloat16 and logits.shape == (2, 2, 4)
    assert fake and set(fake) <= {"triton", "cuda"}  # a GPU op, never the dense reference


def test_evaluation_forward(model, fake):
    model = model.to(CUDA)
    views = RawClips(torch.randint(0, 255, (2, 2, 3, 3, 32, 32), dtype=torch.uint8))  # (B, V, T, 3, S, S)
    loader = [(views, torch.tensor([1, 2]), [])]
    tokens = torch.randint(1, 1000, (3, 4, 77))
    with autocast_sees_a_gpu():
        probs, labels, skipped = predict_probs(model, loader, tokens, 4, Dist(device=CUDA), torch.bfloat16)
    assert probs.shape == (2, 4) and labels.shape == (2,) and skipped == 0
    assert fake and set(fake) <= {"triton", "cuda"}


@pytest.fixture
def video(tmp_path):
    return write_mp4(tmp_path / "v.mp4", np.zeros((12, 32, 32, 3), np.uint8), 12)


def test_predictor(model, video, fake):
    model = model.to(CUDA)
    with autocast_sees_a_gpu():
        # PyAV: torchcodec decodes through torch ops, which the fake mode would replace as well
        predictor = Predictor(model, ["run", "jump", "swim"], amp=torch.bfloat16, decoder="pyav")
        probs = predictor.probs(video)
    on_fake_cuda(probs, predictor.text)
    assert probs.shape == (3,) and probs.dtype == torch.float32
    assert fake and set(fake) <= {"triton", "cuda"}
