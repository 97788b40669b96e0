"""The learned quantizer estimate: how coarsely a frame was quantized, from what the stream tells of it.

Where the bitstream exports no quantizer (HEVC, AV1), a quantizer-conditioned filter
(learned_filter_codec_v3) is fed this estimate instead of the decoder's QP. Pixels alone say little:
on the codec pairs a luma-only network and handcrafted features (Laplacian energy, flat-block share,
8 px boundary steps) reached a mean absolute error of 9-11 QP against 12.5 for a constant, and read
identity (uncoded) frames as QP 30-37. The rate an encoder spent does tell: a CRF encoder's bits per
pixel fall ~2x for every 6 QP at a given content, and the decoded luma says how hard the content is.
So the estimator reads the coded bits per pixel around the frame (``CodedBitsPerPixel``, from
``vsfilter.source``'s packet index), the codec, and the luma.

A wrong estimate costs asymmetrically: too low and the filter does a little less than it could; too
high and it "restores" grain and detail that belong to the picture. So it is trained with a pinball
(quantile) loss at ``tau`` < 0.5: it predicts a low quantile of the quantizers that could have made the
frame, and errs low.

The network: an 8x8 stride-8 convolution on the grid every block codec codes on (a learned block
transform), a 1x1 and a 3x3 convolution over blocks and a 2x2 stride-2 one to 16x16 blocks, pooled
over the frame with learned weights (softplus: flat blocks tell little); the pooled features, log2 of
the rate and the codec (one-hot over :data:`CODECS`) go through a small MLP to the H.264-equivalent QP /
51 (``vsfilter.quantizer``). ONNX: ``luma [N,1,H,W]`` (luma / peak) and ``rate [N,1+len(CODECS)]``
(bits per pixel, one-hot codec) -> ``qp [N,1]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vsfilter.qp_estimator import CODECS_KEY, rate_row

__all__ = ["QuantizerEstimator", "EstimatorData", "EstimatorTraining", "pinball_loss", "frame_targets",
           "evaluate_estimator", "export_estimator", "ARCH", "CODECS", "rate_input"]

#: The codecs the estimator serves (its one-hot codec input, in this order): those whose decoders
#: export no quantizer. Streams of other codecs without QP props are fed the "unknown" plane.
CODECS = ("hevc", "av1")
#: The architecture record a checkpoint carries.
ARCH = {"kind": "qp_estimator", "channels": 32, "codecs": list(CODECS)}
class QuantizerEstimator(nn.Module):
    """(luma ``[N,1,H,W]`` in [0,1], rate ``[N,1+len(codecs)]``) -> the frame's H.264-equivalent QP / 51, ``[N,1]``.

    Args:
        channels: feature channels of the block layers.
        codecs: how many codecs the one-hot codec input distinguishes.
    """

    def __init__(self, channels: int = 32, codecs: int = 2) -> None:
        super().__init__()
        self.channels, self.codecs = channels, codecs
        self.blocks = nn.Sequential(
            nn.Conv2d(1, channels, 8, stride=8), nn.ReLU(),
            nn.Conv2d(channels, channels, 1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 2, stride=2), nn.ReLU())
        self.weight = nn.Conv2d(channels, 1, 1)
        self.head = nn.Sequential(nn.Linear(channels + 1 + codecs, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
        f = self.blocks((x - 0.5) * 8.0)
        w = nn.functional.softplus(self.weight(f)) + 1e-3
        pooled = (f * w).sum((2, 3)) / w.sum((2, 3))
        log_rate = (torch.log2(rate[:, :1] + 1e-4) + 4.0) / 4.0  # ~[-1, 1] over 1/256 .. 16 bits per pixel
        return self.head(torch.cat([pooled, log_rate, rate[:, 1:]], 1))


def pinball_loss(predicted: torch.Tensor, target: torch.Tensor, tau: float | torch.Tensor) -> torch.Tensor:
    """The quantile loss at ``tau`` (a number, or one per sample: ``[N,1]``): over-estimates cost ``1 - tau``,
    under-estimates ``tau`` per unit."""
    diff = target - predicted
    return torch.maximum(tau * diff, (tau - 1.0) * diff).mean()


def rate_input(bits_per_pixel: float, codec: str) -> np.ndarray:
    """The estimator's ``rate`` row of a frame: its coded bits per pixel, then the one-hot codec."""
    return rate_row(bits_per_pixel, codec, CODECS)


def frame_targets(pairs: list, labels: list[dict]) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray],
                                                            list[dict]]:
    """(degraded frames, their ``rate`` rows, their H.264-equivalent QP block maps, labels) of a pair
    set's triples: the encodes of a served codec (:data:`CODECS`) with a recorded rate and quantizer."""
    from .encoding import QP_KINDS

    frames, rates, maps, kept = [], [], [], []
    for (_, degraded, qp), label in zip(pairs, labels):
        codec = QP_KINDS.get(label["encoder"])
        if codec not in CODECS or label.get("bits_per_pixel") is None or np.isnan(qp).any():
            continue
        frames.append(degraded)
        rates.append(rate_input(label["bits_per_pixel"], codec))
        maps.append(np.asarray(qp, np.float32))
        kept.append(label)
    return frames, rates, maps, kept


@dataclass
class EstimatorData:
    """Whole frames with their rate rows and block maps; a batch holds frames of one size."""

    frames: list[np.ndarray]
    rates: list[np.ndarray]
    maps: list[np.ndarray]

    def __post_init__(self) -> None:
        groups: dict[tuple, list[int]] = {}
        for i, frame in enumerate(self.frames):
            groups.setdefault(frame.shape, []).append(i)
        self._groups = list(groups.values())
        self._weights = np.array([len(g) for g in self._groups], np.float64) / len(self.frames)

    def sample(self, batch: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(luma ``[batch,1,H,W]`` in [0,1] of one frame size, rate ``[batch,1+codecs]``, target ``[batch,1]``
        = the frame's mean QP / 51); a random horizontal flip per frame (it keeps the 8 px grid when the
        width is a multiple of 8; other frames are not flipped)."""
        from vsfilter.quantizer import PLANE_SCALE

        group = self._groups[int(rng.choice(len(self._groups), p=self._weights))]
        xs, rs, ys = [], [], []
        for i in rng.choice(group, batch):
            frame = self.frames[i]
            x = frame.astype(np.float32) / (255.0 if frame.dtype == np.uint8 else 1023.0)
            if frame.shape[1] % 8 == 0 and rng.random() < 0.5:
                x = x[:, ::-1]
            xs.append(np.ascontiguousarray(x))
            rs.append(self.rates[i])
            ys.append(self.maps[i].mean() / PLANE_SCALE)
        return (torch.from_numpy(np.stack(xs)[:, None]), torch.from_numpy(np.stack(rs)),
                torch.tensor(ys, dtype=torch.float32)[:, None])


class EstimatorTraining:
    """The estimator, Adam and a one-cycle LR schedule, and where the run stands (step, loss history):
    resumable from :meth:`state`; the frames of step k come from a generator seeded by (seed, k).

    Args:
        settings: ``steps``, ``batch_size``, ``tau``, ``lr``, ``seed`` (a resumed state must match them);
            ``tau`` is one quantile, or a quantile per served codec (``{"hevc": 0.3, "av1": 0.1}``: how
            low each codec's estimate errs is its own choice; an over-estimate harms AV1 sooner).
    """

    def __init__(self, settings: dict) -> None:
        self.settings = dict(settings)
        torch.manual_seed(self.settings["seed"])
        self.model = QuantizerEstimator(ARCH["channels"], len(CODECS))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.settings["lr"])
        self.schedule = torch.optim.lr_scheduler.OneCycleLR(self.optimizer, self.settings["lr"],
                                                            total_steps=self.settings["steps"], pct_start=0.05)
        self.step, self.history = 0, []

    def _tau(self, rate: torch.Tensor) -> float | torch.Tensor:
        """The quantile of each sample of a batch: its codec's (the one-hot columns of ``rate``)."""
        tau = self.settings["tau"]
        if not isinstance(tau, dict):
            return float(tau)
        return rate[:, 1:] @ torch.tensor([[float(tau[c])] for c in CODECS])

    def state(self) -> dict:
        """Everything a resumed run needs (a checkpoint dict: ``training.checkpoint.save_checkpoint``)."""
        return {"model": self.model.state_dict(), "arch": ARCH, "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(), "step": self.step, "history": self.history,
                "settings": self.settings}

    def load_state(self, state: dict) -> None:
        """Continue from :meth:`state`; ValueError when it was saved with other settings."""
        if state.get("settings") != self.settings:
            raise ValueError(f"it belongs to a run with other settings ({state.get('settings')})")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.step, self.history = int(state["step"]), list(state["history"])

    def run_chunk(self, data: EstimatorData, steps: int) -> float:
        """Up to ``steps`` more steps (not past the run's end); their mean loss, also appended to the history."""
        losses = []
        end = min(self.step + steps, self.settings["steps"])
        self.model.train()
        while self.step < end:
            rng = np.random.default_rng((self.settings["seed"], self.step))
            x, rate, y = data.sample(self.settings["batch_size"], rng)
            loss = pinball_loss(self.model(x, rate), y, self._tau(rate))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.schedule.step()
            self.step += 1
            losses.append(loss.item())
        self.history.append({"step": self.step, "loss": float(np.mean(losses))})
        return self.history[-1]["loss"]


@torch.no_grad()
def evaluate_estimator(model: QuantizerEstimator, frames: list[np.ndarray], rates: list[np.ndarray],
                       maps: list[np.ndarray], labels: list[dict]) -> dict:
    """Whole-frame estimates against the truth, in H.264-equivalent QP: per encoder the mean error
    (bias, negative = low), the mean absolute error and the share of frames over-estimated by more than 3."""
    from vsfilter.quantizer import PLANE_SCALE

    model.eval()
    errors: dict[str, list[float]] = {}
    for frame, rate, qmap, label in zip(frames, rates, maps, labels):
        x = torch.from_numpy(frame.astype(np.float32) / (255.0 if frame.dtype == np.uint8 else 1023.0))[None, None]
        predicted = float(model(x, torch.from_numpy(rate)[None])) * PLANE_SCALE
        errors.setdefault(label["encoder"], []).append(predicted - float(qmap.mean()))
    out = {}
    for encoder, e in sorted(errors.items()):
        a = np.array(e)
        out[encoder] = {"frames": int(a.size), "bias": float(a.mean()), "mae": float(np.abs(a).mean()),
                        "over_3": float((a > 3).mean())}
    return out


def export_estimator(model: QuantizerEstimator, path) -> None:
    """The estimator as ONNX (opset 17): ``luma [N,1,H,W]``, ``rate [N,1+codecs]`` -> ``qp [N,1]``
    (H.264-equivalent QP / 51)."""
    import onnx

    from vsfilter.atomic import atomic_output

    from .onnx_export import OPSET

    model = model.eval().cpu()
    with atomic_output(path) as tmp:
        dummy = (torch.rand(1, 1, 64, 48), torch.rand(1, 1 + model.codecs))
        torch.onnx.export(model, dummy, str(tmp), input_names=["luma", "rate"], output_names=["qp"],
                          opset_version=OPSET, dynamic_axes={"luma": {0: "N", 2: "H", 3: "W"}, "rate": {0: "N"},
                                                             "qp": {0: "N"}}, dynamo=False)
        proto = onnx.load(str(tmp))
        onnx.helper.set_model_props(proto, {CODECS_KEY: ",".join(CODECS[: model.codecs])})
        onnx.save(proto, str(tmp))
