"""The objective, pooling and augmentation options end to end on the tiny demo (stage functions, 1 epoch)."""

import dataclasses

import numpy as np
import pytest

from salsa2.training.augment import AugmentParams
from salsa2.model.checkpoint import load_checkpoint
from salsa2.features.splits import load_split
from salsa2.evaluation.embed import similarity_matrix
from salsa2.audio.frontends import FrontendConfig
from salsa2.distill.targets import build_ensemble
from salsa2.evaluation.evaluate import evaluate
from salsa2.distill.similarities import dump_similarities
from salsa2.training.two_stage import train_stage1, train_stage2
from salsa2.features.text_cache import TextFeatureStore

pytestmark = pytest.mark.slow


def test_listnet_tap_mixco_masking_and_blended_stage2(tiny_demo, tiny_params, tmp_path):
    params = dataclasses.replace(
        tiny_params, encoders={"cnn": "mel64"}, loss="listnet", pooling="tap", tap={"proj_dim": 64, "dropout": 0.05},
        augment=AugmentParams(mixco=True, text_mask=0.15, text_mask_views=1),
        stage1=dataclasses.replace(tiny_params.stage1, epochs=1),
        stage2=dataclasses.replace(tiny_params.stage2, epochs=1, sup_weight=0.5, relevance_weight=0.5),
    )
    common = dict(data_dir=tiny_demo.data, features_dir=tiny_demo.features, text_features=tiny_demo.text_features)
    s1, s2 = tmp_path / "stage1", tmp_path / "stage2"
    train_stage1(params, "cnn", out_dir=s1, **common)
    dump_similarities(params, s1, tiny_demo.data, tiny_demo.features, tiny_demo.text_features,
                      tmp_path / "sims" / "cnn.npz")
    build_ensemble(params, "cnn", tmp_path / "sims", tmp_path / "targets.npz")
    train_stage2(params, "cnn", init_dir=s1, targets_path=tmp_path / "targets.npz", out_dir=s2, **common)

    model, info = load_checkpoint(s2)
    assert model.cfg.pooling == "tap" and info["relevance_weight"] == 0.5
    data = load_split(tiny_demo.data, "test", tiny_demo.features, model.frontend, normalize_text=True)
    store = TextFeatureStore(tiny_demo.text_features)
    again, _ = load_checkpoint(s2)
    np.testing.assert_allclose(similarity_matrix(again, data, store), similarity_matrix(model, data, store), atol=1e-6)

    results = evaluate(params, {"s1": s1, "s2": s2}, tiny_demo.data, {FrontendConfig().key(): tiny_demo.features},
                       tiny_demo.text_features, "test", {"ens": ["s1", "s2"]},
                       relevance=(tiny_demo.raw / "relevance_test.csv", "demo"))
    for name in ("s1", "s2", "ens", "chance"):
        assert 0 < results[name]["t2a_multi/mAP@16"] <= 1
        assert 0 < results[name]["t2a/mAP@10"] <= 1
