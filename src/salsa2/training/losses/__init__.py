"""Training objectives, selected by name from params (``loss: nt_xent``): one module each plus one line below.

Calling convention (shared by every loss)::

    loss(sim, positives, teacher=None) -> {"<name>_loss": scalar, ...}

``sim`` (A, T): cosine similarities of the batch's A audio embeddings and T caption embeddings.
``positives`` (A, T) bool: audio i and caption j belong to the same clip (decided by clip identity, so a
batch may hold several captions of one clip, or one clip several times). ``teacher`` (A, T): soft
correspondence estimates for the batch (Primus et al. 2024 C-hat restricted to the batch), for distillation; or a
dict of named blocks when a loss needs several (``ensemble``: C-hat, ``relevance``: Xie et al. 2024 relevances g;
see ``losses.base.pick_target``).
The trainer sums every value whose key ends in ``_loss``.
"""

from salsa2.utils.registry import Registry

LOSSES: Registry = Registry("loss")

from salsa2.training.losses import distill, listnet, ntxent, sigmoid  # noqa: E402,F401
from salsa2.training.losses.base import total_loss  # noqa: E402

__all__ = ["LOSSES", "total_loss"]
