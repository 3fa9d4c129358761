"""Cached text features (salsa2.features.text_cache): batching by caption length changes nothing."""

from __future__ import annotations

import numpy as np
import torch

from salsa2.features.text_cache import compute_text_features


def test_length_sorted_text_features_equal_unsorted(minilm):
    texts = ["a", "a long caption about a car passing by on a wet street at night", "birds sing",
             "someone types on a keyboard quickly", "water", "a man speaks and a door closes loudly behind him"]
    got = compute_text_features(minilm, texts, batch_size=2)
    with torch.no_grad():
        want = np.concatenate([minilm.encode(texts[s : s + 2]).numpy() for s in range(0, len(texts), 2)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # float32: batch composition moves the last bits
