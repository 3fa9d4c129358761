"""Where each stage's logic used to live. It now lives with its concept, so that each stage imports only
what it needs (tests/test_dvc_deps.py); this module re-exports the old names for existing callers.
No stage imports it."""

from salsa2.ensemble import build_ensemble, build_ensembles, teacher_members, teacher_sets  # noqa: F401
from salsa2.evaluate import chance_metrics, evaluate, write_metrics  # noqa: F401
from salsa2.features import build_features, union_audio  # noqa: F401
from salsa2.prepare import prepare, prepare_pretrain  # noqa: F401
from salsa2.similarities import dump_similarities  # noqa: F401
from salsa2.text_features import build_text_features  # noqa: F401
from salsa2.two_stage import (  # noqa: F401
    caption_relevance,
    model_config,
    supervised_loss,
    train_stage1,
    train_stage2,
    training_targets,
)
