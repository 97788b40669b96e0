"""What a comparison means, decided once: does the pre-filter restore, game or harm?

Every place that judges a result (the CLI's warnings, the JSON's ``verdict``, the HTML banner) asks
:func:`judge`.

The rules, on the mean deltas (prefiltered - distorted):

- **harms**: PSNR-Y falls by more than :data:`HARM_PSNR_DB` *and* VMAF NEG falls by more than
  :data:`HARM_VMAF_NEG`. 0.05 dB is the do-no-harm budget the codec models are held to (a 1.2% rise of
  the mean squared error: below it a loss is within what an INT8 or bf16 run moves); 0.25 VMAF NEG is
  far below a visible step (about 6 VMAF points is one just-noticeable difference) but well above
  libvmaf's numerical noise, and it is what separates the smoothing of good encodes (-0.45 to -0.68
  with learned_filter_codec_v1) from no change. Both must fall: PSNR-Y alone punishes a harmless
  sub-pixel shift, VMAF NEG alone punishes a harmless loss of grain.
- **games**: VMAF rises while PSNR-Y or VMAF NEG falls (enhancement gaming), and the fall is not harm.
- **restores**: PSNR-Y rises and VMAF NEG does not fall.
- **neutral**: anything else.

Banding is flagged beside the verdict (``banding``): CAMBI of the prefiltered stream more than
:data:`BANDING_CAMBI` above the distorted one's. CAMBI runs from 0 (none) to 24; Netflix's studies put
visible banding at about 5 and a just-noticeable step near 1, so a pre-filter that adds a full point
smooths gradients into steps a viewer can see.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["BANDING_CAMBI", "HARM_PSNR_DB", "HARM_VMAF_NEG", "KINDS", "Verdict", "judge"]

HARM_PSNR_DB = 0.05
HARM_VMAF_NEG = 0.25
BANDING_CAMBI = 1.0
KINDS = ("restores", "games", "harms", "neutral")
#: The model to name when the card's blur + JPEG model is run on real encodes.
CODEC_MODEL = "learned_filter_codec_v2"
CARD_MODEL = "learned_filter_v1"


@dataclass(frozen=True)
class Verdict:
    """The judgement of a comparison.

    Attributes:
        kind: one of :data:`KINDS`.
        text: one sentence for the banner.
        warnings: what compare warns about (gaming, harm, banding), each one line.
        banding: the pre-filter raises CAMBI by more than :data:`BANDING_CAMBI`.
    """

    kind: str
    text: str
    warnings: tuple[str, ...] = ()
    banding: bool = False

    def to_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text, "banding": self.banding,
                "thresholds": {"psnr_y_db": -HARM_PSNR_DB, "vmaf_neg": -HARM_VMAF_NEG, "cambi": BANDING_CAMBI}}


def _gaming(d: Mapping[str, float]) -> bool:
    return d["vmaf"] > 0 and (d["psnr_y"] < 0 or d["vmaf_neg"] < 0)


def _harm(d: Mapping[str, float]) -> bool:
    return d["psnr_y"] < -HARM_PSNR_DB and d["vmaf_neg"] < -HARM_VMAF_NEG


def judge(delta: Mapping[str, float], model_id: str) -> Verdict:
    """The verdict on mean deltas ``delta`` (``psnr_y``, ``vmaf_neg``, ``vmaf``, optionally ``cambi``) of
    pre-filter ``model_id``."""
    verdict = _kind(delta, model_id)
    if delta.get("cambi", 0.0) > BANDING_CAMBI:
        warning = (f"the pre-filter {model_id} adds banding: CAMBI {delta['cambi']:+.3f} (more than "
                   f"{BANDING_CAMBI:+.1f}: smooth gradients turn into visible steps)")
        return Verdict(verdict.kind, verdict.text + "; it adds banding", (*verdict.warnings, warning), True)
    return verdict


def _kind(delta: Mapping[str, float], model_id: str) -> Verdict:
    warnings = []
    gaming = _gaming(delta)
    if gaming:
        fell = " and ".join(n for n, k in (("PSNR-Y", "psnr_y"), ("VMAF NEG", "vmaf_neg")) if delta[k] < 0)
        warnings.append(f"VMAF rises ({delta['vmaf']:+.2f}) while {fell} falls: the gain may be enhancement "
                        "gaming rather than real fidelity")
    if _harm(delta):
        advice = (f"; {CARD_MODEL} undoes blur + JPEG: for real encodes use the model {CODEC_MODEL}"
                  if model_id == CARD_MODEL else "")
        warnings.append(f"the pre-filter {model_id} harms this pair: PSNR-Y {delta['psnr_y']:+.3f} dB, VMAF NEG "
                        f"{delta['vmaf_neg']:+.3f}, VMAF {delta['vmaf']:+.3f}{advice}")
        return Verdict("harms", "fidelity falls (PSNR-Y and VMAF NEG): the pre-filter makes this stream worse",
                       tuple(warnings))
    if gaming:
        return Verdict("games", "VMAF rises while fidelity falls: likely enhancement gaming", tuple(warnings))
    if delta["psnr_y"] > 0 and delta["vmaf_neg"] >= 0:
        return Verdict("restores", "fidelity and VMAF NEG improve: real restoration")
    return Verdict("neutral", "no clear improvement")
