"""Helpers shared by the losses."""

from __future__ import annotations

import torch


def total_loss(terms: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum of the terms whose name ends in ``_loss`` (others are reported, not optimised)."""
    parts = [v for k, v in terms.items() if k.endswith("_loss")]
    if not parts:
        raise ValueError(f"no '*_loss' term among {sorted(terms)}")
    return torch.stack(parts).sum()


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, dim: int) -> torch.Tensor:
    """H(target, softmax(logits)) along ``dim``, averaged over the other dimension.

    ``target`` must sum to one along ``dim``.
    """
    return -(target * torch.log_softmax(logits, dim=dim)).sum(dim).mean()


def positives_to_target(positives: torch.Tensor, dim: int) -> torch.Tensor:
    """Uniform distribution over the positives along ``dim`` (every row/column must hold one)."""
    pos = positives.float()
    count = pos.sum(dim, keepdim=True)
    if bool((count == 0).any()):
        raise ValueError("a query in the batch has no positive; build `positives` from clip ids")
    return pos / count


def pick_target(teacher, key: str) -> torch.Tensor | None:
    """The (A, T) target block a loss needs: ``teacher`` itself, or ``teacher[key]`` when several are passed.

    Stage 2 may need more than one kind of target (``ensemble``: C-hat, ``relevance``: Xie et al. 2024 g).
    """
    if teacher is None or isinstance(teacher, torch.Tensor):
        return teacher
    return teacher.get(key)
