"""The learned_filter_v1 network: Conv(1->C) -> ResBlocks(C) -> Conv(C->1) plus the global residual.

With C=16 and 4 blocks it has 18,865 parameters (the card's "~19K"); with 3 blocks, 14,225.
Every op exports to the card's allowlist: Conv, Relu, Add.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LearnedFilter", "ResBlock", "count_params"]


class ResBlock(nn.Module):
    """``x + Conv(ReLU(Conv(x)))`` with 3x3 convolutions."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class LearnedFilter(nn.Module):
    """Degraded luma ``[N,1,H,W]`` in [0, 1] -> reconstructed luma of the same shape.

    Args:
        num_blocks: residual blocks (4 gives the card's ~19K parameters).
        channels: feature channels.
    """

    def __init__(self, num_blocks: int = 4, channels: int = 16) -> None:
        super().__init__()
        self.num_blocks, self.channels = num_blocks, channels
        self.head = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(inplace=True))
        self.body = nn.Sequential(*[ResBlock(channels) for _ in range(num_blocks)])
        self.tail = nn.Conv2d(channels, 1, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # start as the identity: the global skip carries the input
        nn.init.zeros_(self.tail.bias)

    @property
    def receptive_radius(self) -> int:
        """Pixels of context per side: one per 3x3 conv."""
        return 2 + 2 * self.num_blocks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.tail(self.body(self.head(x)))


def count_params(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
