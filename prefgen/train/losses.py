"""The loss terms prefgen adds to trl's DPO (its sigmoid loss stays trl's), as plain functions of log-probs (tested
against the formulas).

Notation: ``logp_*`` are summed log-probs of a completion (what DPO uses), ``ref_*`` the reference model's, β the
DPO temperature. All functions return a scalar: the mean over the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def image_content_alignment(token_logps: torch.Tensor, mask: torch.Tensor, flags: torch.Tensor) -> torch.Tensor:
    """SENA's ICA term: mean over the batch of flag_b · (−token-mean log π(y_w,t)) for the chosen answers.

    ``token_logps`` / ``mask``: (batch, tokens) per-token log-probs of the chosen completions and their mask;
    ``flags``: (batch,) 1 for description rows, 0 otherwise. Rows without the flag add 0 to the mean, as in SENA's
    code, so the effective weight is the share of description rows in the batch.
    """
    mask = mask.to(token_logps.dtype)
    nll = -(token_logps * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
    return (flags.to(nll.dtype) * nll).mean()


def mdpo_conditional(logp_clean, ref_clean, logp_corrupted, ref_corrupted, beta: float) -> torch.Tensor:
    """mDPO's conditional term: the chosen answer must gain more on the real image than on the corrupted one:
    −log σ(β[(logπ(y_w|m) − logπ_ref(y_w|m)) − (logπ(y_w|m') − logπ_ref(y_w|m'))])."""
    return -F.logsigmoid(beta * ((logp_clean - ref_clean) - (logp_corrupted - ref_corrupted))).mean()


def mdpo_anchor(logp_chosen, ref_chosen, beta: float) -> torch.Tensor:
    """mDPO's anchor (δ = 0): the chosen answer's reward stays positive, −log σ(β(logπ(y_w) − logπ_ref(y_w)))."""
    return -F.logsigmoid(beta * (logp_chosen - ref_chosen)).mean()
