"""Text-aware attention pooling, TAP (Tymofieiev 2025, sec. 3.6, after Xin et al., ICASSP 2023).

For a caption embedding ``c_t`` (D) and a clip's token sequence ``c_a`` (S x D, the projected encoder tokens):

    Q_t = LN(c_t) W_q,   K_a = LN(c_a) W_k,   V_a = LN(c_a) W_v            (W_* in R^{D x D_p})
    z_{a|t} = LN(Dropout(softmax(Q_t K_a^T / sqrt(D_p))) V_a W_o)          (W_o in R^{D_p x D})

and the similarity of clip a and caption t is cos(z_{a|t}, c_t): every caption pools every clip differently,
so similarities are computed for a whole (A, T) block at once. Attention covers the tokens whose pooling
weight is > 0 (the encoder contract, ``salsa2.model.encoders.base``). Tymofieiev 2025: D_p = 2048, dropout 0.05 "on the
scaled dot product result"; the dropout here acts on the attention probabilities (as in ``torch``'s
scaled-dot-product attention), which lets the block be computed without the (T, A, D_p) tensor:

* ``K_a``'s bias adds the same value to every token's score for one caption, so it cancels in the softmax
  and the scores are ``(Q_t W_k^T) . LN(c_a)`` (cost T*A*S*D instead of T*A*S*D_p);
* the weights sum to one (without dropout), so ``softmax(.) V_a W_o + b_o = softmax(.) (V_a W_o) + b_o``
  with ``V_a W_o`` (S x D) computed once per clip. With dropout the rows no longer sum to one; the bias
  terms are then scaled by the surviving weight, exactly as in the unfactored product.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class TextAwarePooling(nn.Module):
    """Args: dim: D, the shared space; proj_dim: D_p; dropout: on the attention probabilities."""

    def __init__(self, dim: int, proj_dim: int = 2048, dropout: float = 0.05) -> None:
        super().__init__()
        self.norm_text = nn.LayerNorm(dim)
        self.norm_audio = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, proj_dim)
        self.k = nn.Linear(dim, proj_dim)
        self.k.bias.requires_grad_(False)  # cancels in the softmax (see pool): never has a gradient, never trained
        self.v = nn.Linear(dim, proj_dim)
        self.o = nn.Linear(proj_dim, dim)
        self.norm_out = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.scale = 1.0 / math.sqrt(proj_dim)

    def pool(self, tokens: torch.Tensor, weights: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Text-conditioned clip embeddings z_{a|t}: (A, S, D), (A, S), (T, D) -> (T, A, D), unnormalised."""
        a = self.norm_audio(tokens)                                   # (A, S, D)
        q = self.q(self.norm_text(text))                              # (T, Dp)
        q_k = (q @ self.k.weight) * self.scale                        # (T, D): Q W_k (bias of K cancels)
        scores = torch.einsum("td,asd->tas", q_k, a)                  # (T, A, S)
        scores = scores.masked_fill(~(weights > 0)[None], float("-inf"))
        attn = self.dropout(torch.softmax(scores, dim=-1))
        v_o = a @ (self.o.weight @ self.v.weight).T                   # (A, S, D): LN(c_a) W_v W_o
        bias = self.o.weight @ self.v.bias                            # (D,): b_v W_o
        mass = attn.sum(-1, keepdim=True)                             # 1 without dropout
        pooled = torch.einsum("tas,asd->tad", attn, v_o) + mass * bias + self.o.bias
        return self.norm_out(pooled)

    def similarity(self, tokens: torch.Tensor, weights: torch.Tensor, text: torch.Tensor,
                   block: int = 256) -> torch.Tensor:
        """(A, T) cosine similarities cos(z_{a|t}, c_t), computed ``block`` captions at a time."""
        text_n = F.normalize(text, dim=-1)
        cols = []
        for s in range(0, text.shape[0], block):
            z = F.normalize(self.pool(tokens, weights, text[s : s + block]), dim=-1)  # (t, A, D)
            cols.append(torch.einsum("tad,td->at", z, text_n[s : s + block]))
        return torch.cat(cols, dim=1)

    def reference_pool(self, tokens: torch.Tensor, weights: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The unfactored formula of Tymofieiev 2025, sec. 3.6 (dropout on the attention probabilities), for tests."""
        a = self.norm_audio(tokens)
        q = self.q(self.norm_text(text))                              # (T, Dp)
        k, v = self.k(a), self.v(a)                                   # (A, S, Dp)
        scores = torch.einsum("tp,asp->tas", q, k) * self.scale
        scores = scores.masked_fill(~(weights > 0)[None], float("-inf"))
        attn = self.dropout(torch.softmax(scores, dim=-1))
        return self.norm_out(self.o(torch.einsum("tas,asp->tap", attn, v)))
