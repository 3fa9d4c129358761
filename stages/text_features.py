"""Stage text_features: pooled features of every caption from the frozen text encoder (params: text)."""

from common import setup_training

from salsa2.features.text_cache import build_text_features

if __name__ == "__main__":
    t = setup_training().text
    build_text_features(["data/prepared", "data/pretrain"], t.model, t.max_length, t.normalize, t.pooling,
                        "data/text_features.npz")
