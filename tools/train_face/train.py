"""Training loop: random crops of the corpus, gain and noise augmentation, weighted mean squared error.

Gain is varied in the band-power domain (before the logarithm), from -24 dB to +3 dB, and half of the
crops get a faint noise floor, so the network answers recorded announcements at other levels, not only
Piper's peak-normalised speech. Frames inside p, b and m weigh eight times as much: a closure is short
and it is what a viewer notices when it is missing.
"""
from __future__ import annotations

import logging
import math
import time

import numpy as np
import torch

from talkerd.speak.mouth_engine import N_MELS, POWER_FLOOR

from .corpus import Example
from .model import MouthNet

log = logging.getLogger(__name__)

PAD = 48
"""Frames of digital silence added around every utterance (rest pose targets)."""
CHANNEL_WEIGHTS = (2.0, 2.0, 1.0, 1.0)
BILABIAL_WEIGHT = 8.0


def normalisation(examples: list[Example]) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and deviation of the log features over the training set."""
    logs = np.concatenate([np.log(e.power + POWER_FLOOR) for e in examples], axis=1)
    return logs.mean(axis=1), logs.std(axis=1) + 1e-3


class Batches:
    """Random crops with augmentation; deterministic for a seed."""

    def __init__(self, examples: list[Example], crop: int, batch: int, seed: int) -> None:
        self._rng = np.random.default_rng(seed)
        self._crop, self._batch = crop, batch
        self._power = [np.pad(e.power, ((0, 0), (PAD, PAD))) for e in examples]
        self._target = [np.pad(e.target, ((PAD, PAD), (0, 0))) for e in examples]
        self._weight = [np.pad(1.0 + (BILABIAL_WEIGHT - 1.0) * e.bilabial, (PAD, PAD), constant_values=1.0)
                        for e in examples]
        lengths = np.array([p.shape[1] for p in self._power], dtype=np.float64)
        self._p = lengths / lengths.sum()
        self._speech_level = float(np.median(np.concatenate([e.power.mean(axis=0) for e in examples])))

    def next(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mel = np.empty((self._batch, N_MELS, self._crop), dtype=np.float32)
        target = np.empty((self._batch, self._crop, 4), dtype=np.float32)
        weight = np.empty((self._batch, self._crop), dtype=np.float32)
        rng = self._rng
        for b in range(self._batch):
            i = rng.choice(len(self._power), p=self._p)
            power, length = self._power[i], self._power[i].shape[1]
            start = int(rng.integers(0, max(1, length - self._crop)))
            sl = slice(start, start + self._crop)
            crop_power = np.zeros((N_MELS, self._crop))
            crop_power[:, : power[:, sl].shape[1]] = power[:, sl]
            gain = 10.0 ** (rng.uniform(-24.0, 3.0) / 10.0)
            noise = self._speech_level * 10.0 ** (rng.uniform(-60.0, -30.0) / 10.0) if rng.random() < 0.5 else 0.0
            mel[b] = np.log(crop_power * gain + noise + POWER_FLOOR)
            t = self._target[i][sl]
            target[b] = np.pad(t, ((0, self._crop - len(t)), (0, 0)))
            w = self._weight[i][sl]
            weight[b] = np.pad(w, (0, self._crop - len(w)), constant_values=1.0)
        return torch.from_numpy(mel), torch.from_numpy(target), torch.from_numpy(weight)


def train(examples: list[Example], *, steps: int, seed: int, channels: int = 96, crop: int = 200,
          batch: int = 32, lr: float = 3e-3) -> MouthNet:
    """Train a ``MouthNet`` for ``steps`` steps; the same seed and data give the same weights."""
    torch.manual_seed(seed)
    mean, std = normalisation(examples)
    net = MouthNet(channels, mean, std)
    batches = Batches(examples, crop, batch, seed)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: 0.03 + 0.97 * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps)))
    channel_weights = torch.tensor(CHANNEL_WEIGHTS)
    started, running = time.monotonic(), 0.0
    net.train()
    for step in range(1, steps + 1):
        mel, target, weight = batches.next()
        error = (net(mel) - target) ** 2 * channel_weights
        loss = (error.sum(dim=2) * weight).sum() / weight.sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
        if step % 100 == 0 or step == steps:
            log.info("step %d/%d loss %.4f (%.0f s)", step, steps, running, time.monotonic() - started)
    net.eval()
    return net
