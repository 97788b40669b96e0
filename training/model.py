"""The learned_filter_v1 network: Conv(1->C) -> ResBlocks(C) -> Conv(C->1) plus the global residual.

With ``in_channels=2`` (learned_filter_codec_v3) the input is ``[N,2,H,W]``: the luma and a quantizer
plane (``vsfilter.quantizer``); the head convolves both, and the global residual adds the luma back
through a fixed 1x1 convolution (weights ``[1, 0]``), so the graph stays Conv/Relu/Add and tiling stays
exact. :func:`grow` turns a network into one with more input planes, channels or blocks that computes
the same output (the new weights that old channels read start at zero).

With C=16 and 4 blocks it has 18,865 parameters (the card's "~19K"); with 3 blocks, 14,225.
Every op exports to the card's allowlist: Conv, Relu, Add.

``LearnedFilter(reparam=True)`` trains each 3x3 convolution as a RepVGG-style sum of parallel
branches (3x3 + 1x1, + identity where the channel counts match); :func:`fold` merges the branches
into one 3x3 kernel per convolution, which gives the plain network (same ops, same 18,865 parameters,
same outputs up to float rounding) that is exported.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LearnedFilter", "ResBlock", "RepConv3x3", "count_params", "fold", "grow", "widen_input"]


class RepConv3x3(nn.Module):
    """A 3x3 convolution trained as 3x3 + 1x1 (+ scaled identity when ``cin == cout``) branches.

    The identity branch has a learnable per-channel scale that starts at 0: without batch norm, plain
    identity branches would compound through the residual blocks and blow up the first steps.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.cin, self.cout = cin, cout
        self.conv3 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv1 = nn.Conv2d(cin, cout, 1)
        self.identity = nn.Parameter(torch.zeros(cout)) if cin == cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3(x) + self.conv1(x)
        return y + x * self.identity.view(1, -1, 1, 1) if self.identity is not None else y

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The single 3x3 kernel and bias equal to the sum of the branches."""
        weight = self.conv3.weight.detach().clone()
        weight[:, :, 1:2, 1:2] += self.conv1.weight.detach()
        if self.identity is not None:
            idx = torch.arange(self.cout)
            weight[idx, idx, 1, 1] += self.identity.detach()
        return weight, (self.conv3.bias + self.conv1.bias).detach().clone()


def _conv(cin: int, cout: int, reparam: bool) -> nn.Module:
    return RepConv3x3(cin, cout) if reparam else nn.Conv2d(cin, cout, 3, padding=1)


class ResBlock(nn.Module):
    """``x + Conv(ReLU(Conv(x)))`` with 3x3 convolutions."""

    def __init__(self, channels: int, reparam: bool = False) -> None:
        super().__init__()
        self.conv1 = _conv(channels, channels, reparam)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = _conv(channels, channels, reparam)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class LearnedFilter(nn.Module):
    """Degraded luma ``[N,1,H,W]`` in [0, 1] (with ``in_channels=2``: luma and quantizer plane,
    ``[N,2,H,W]``) -> reconstructed luma ``[N,1,H,W]``.

    Args:
        num_blocks: residual blocks (4 gives the card's ~19K parameters).
        channels: feature channels.
        reparam: train with re-parameterisable branches (export with :func:`fold`).
        in_channels: 1 (luma) or 2 (luma, quantizer plane).
    """

    def __init__(self, num_blocks: int = 4, channels: int = 16, reparam: bool = False, in_channels: int = 1) -> None:
        super().__init__()
        self.num_blocks, self.channels, self.reparam, self.in_channels = num_blocks, channels, reparam, in_channels
        self.head = nn.Sequential(_conv(in_channels, channels, reparam), nn.ReLU(inplace=True))
        if in_channels > 1:  # the global residual carries the luma only: a fixed 1x1 conv (Conv, not Slice)
            self.skip = nn.Conv2d(in_channels, 1, 1, bias=False)
            self.skip.weight.requires_grad_(False)
            with torch.no_grad():
                self.skip.weight.zero_()
                self.skip.weight[0, 0] = 1.0
        self.body = nn.Sequential(*[ResBlock(channels, reparam) for _ in range(num_blocks)])
        self.tail = _conv(channels, 1, reparam)
        for layer in self.tail.modules():  # start as the identity: the global skip carries the input
            if isinstance(layer, nn.Conv2d):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    @property
    def arch(self) -> dict:
        """What rebuilds this network: ``LearnedFilter(**arch)``."""
        return {"num_blocks": self.num_blocks, "channels": self.channels, "reparam": self.reparam,
                "in_channels": self.in_channels}

    @property
    def receptive_radius(self) -> int:
        """Pixels of context per side: one per 3x3 conv."""
        return 2 + 2 * self.num_blocks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.tail(self.body(self.head(x)))
        return (self.skip(x) if self.in_channels > 1 else x) + residual


def fold(model: LearnedFilter) -> LearnedFilter:
    """The plain network (one 3x3 Conv per layer) computing what ``model`` computes; ``model`` if plain."""
    if not model.reparam:
        return model
    plain = LearnedFilter(model.num_blocks, model.channels, reparam=False, in_channels=model.in_channels)
    pairs = [(plain.head[0], model.head[0]), (plain.tail, model.tail)]
    for p_block, r_block in zip(plain.body, model.body):
        pairs += [(p_block.conv1, r_block.conv1), (p_block.conv2, r_block.conv2)]
    with torch.no_grad():
        for target, source in pairs:
            weight, bias = source.folded()
            target.weight.copy_(weight)
            target.bias.copy_(bias)
    return plain.to(next(model.parameters()).device).eval()


def grow(model: LearnedFilter, in_channels: int | None = None, channels: int | None = None,
         num_blocks: int | None = None) -> LearnedFilter:
    """A plain copy of the plain ``model`` with more input planes, feature channels and/or residual blocks
    that computes the same output (a warm start: step 0 equals the old model, e.g. the wider variant of
    learned_filter_codec_v3 starting from the shipped network).

    New input planes get zero head weights. New feature channels get fresh random weights wherever they
    *read*, and zero weights wherever an old channel or the tail would read them, so the old channels (and
    the output) are unchanged while the new ones already carry features the tail's gradient can pick up.
    New residual blocks are appended with a zero second convolution (``x + 0``).

    Args:
        model: a plain (folded) network.
        in_channels: input planes (default: the model's).
        channels: feature channels (default: the model's).
        num_blocks: residual blocks (default: the model's).

    Raises:
        ValueError: ``model`` is re-parameterised, or a requested size is smaller than the model's.
    """
    sizes = {"in_channels": (model.in_channels, in_channels), "channels": (model.channels, channels),
             "num_blocks": (model.num_blocks, num_blocks)}
    if model.reparam:
        raise ValueError("grow takes a plain network: fold() it first")
    small = [f"{k} {new} < {old}" for k, (old, new) in sizes.items() if new is not None and new < old]
    if small:
        raise ValueError(f"grow only adds capacity: {', '.join(small)}")
    cin, c, blocks = (new or old for old, new in sizes.values())
    big = LearnedFilter(blocks, c, in_channels=cin).to(next(model.parameters()).device)
    old_cin = model.in_channels

    def put(target: nn.Conv2d, source: nn.Conv2d) -> None:
        """Copy ``source`` into the top-left corner; old outputs read nothing from new inputs."""
        o, i = source.weight.shape[:2]
        target.weight[:o, :i] = source.weight
        target.bias[:o] = source.bias
        target.weight[:o, i:] = 0.0

    with torch.no_grad():
        put(big.head[0], model.head[0])
        if cin > old_cin:
            big.head[0].weight[:, old_cin:] = 0.0  # new planes start silent for every channel
        for index, block in enumerate(big.body):
            if index < model.num_blocks:
                put(block.conv1, model.body[index].conv1)
                put(block.conv2, model.body[index].conv2)
            else:
                block.conv2.weight.zero_()
                block.conv2.bias.zero_()
        put(big.tail, model.tail)
    return big.eval()


def widen_input(model: LearnedFilter, in_channels: int) -> LearnedFilter:
    """:func:`grow` with more input planes only (learned_filter_codec_v3's start from codec_v2)."""
    if model.in_channels != 1:
        raise ValueError("widen_input takes a plain one-input network")
    return grow(model, in_channels=in_channels)


def count_params(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
