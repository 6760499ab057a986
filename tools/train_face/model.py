"""The face network (torch, development only) and its ONNX export with fixed window shapes.

A stack of 1-D convolutions over time (96 channels): a 5-wide input convolution, four residual 5-wide convolutions
dilated 1, 2, 4 and 8, and a 1×1 output layer with a sigmoid (shapes are 0..1). Receptive field ±32
feature frames (±320 ms), which the runtime's window context covers, so windows join without seams.
Feature normalisation (mean and deviation per band, from the training set) is inside the graph.
Only Conv, Relu, Add, Sub, Div, Sigmoid and Transpose: TensorRT builds it as is.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from talkerd.speak.mouth_engine import N_MELS

DILATIONS = (1, 2, 4, 8)
KERNEL = 5
RECEPTIVE_HALF = (KERNEL // 2) * (1 + sum(DILATIONS))
"""Frames either side of an output frame that can change it."""


class MouthNet(nn.Module):
    def __init__(self, channels: int = 96, mean: np.ndarray | None = None, std: np.ndarray | None = None) -> None:
        super().__init__()
        mean = np.zeros(N_MELS) if mean is None else mean
        std = np.ones(N_MELS) if std is None else std
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, N_MELS, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, N_MELS, 1))
        self.inp = nn.Conv1d(N_MELS, channels, KERNEL, padding=KERNEL // 2)
        self.blocks = nn.ModuleList(
            nn.Conv1d(channels, channels, KERNEL, padding=(KERNEL // 2) * d, dilation=d) for d in DILATIONS
        )
        self.out = nn.Conv1d(channels, 4, 1)
        self.act = nn.ReLU()

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """log-mel [batch, N_MELS, frames] → mouth [batch, frames, 4]."""
        x = self.act(self.inp((mel - self.mean) / self.std))
        for block in self.blocks:
            x = x + self.act(block(x))
        return torch.sigmoid(self.out(x)).transpose(1, 2)


def export(net: MouthNet, path: Path, window: int, context: int, metadata: dict[str, str]) -> None:
    """Write the ONNX with input ``mel`` [1, N_MELS, window] and output ``mouth`` [1, window, 4]."""
    import onnx

    net.eval()
    dummy = torch.zeros(1, N_MELS, window)
    kwargs = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}
    torch.onnx.export(net, (dummy,), str(path), input_names=["mel"], output_names=["mouth"],
                      opset_version=17, do_constant_folding=True, **kwargs)
    model = onnx.load(str(path))
    entries = {"window_frames": str(window), "context_frames": str(context), **metadata}
    del model.metadata_props[:]
    for key, value in entries.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
