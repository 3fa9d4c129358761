"""Imported released models against their source repositories' own code: cosine >= 0.9999 per clip and caption.

tests/fixtures/released_salsa_reference.npz and released_dcase2025_reference.npz hold what the source code
computes (OptimusPrimus/salsa 983b450: tests/fixtures/make_released_reference.py; CPJKU/dcase2025_task6_baseline
c78422f: tests/fixtures/make_dcase2025_reference.py) with seeded weights: the embeddings of test waveforms of
5 to 30 s (each alone) and of captions with capitals, punctuation and more than 32 tokens, their similarity matrix,
and the saved checkpoint's ``key:shape`` list. Here the same checkpoint is rebuilt from the seeds
(tests/helpers/released_reference.py), saved in the released format, imported with salsa2's importer of that kind,
loaded with ``load_checkpoint`` and run through salsa2's path: ``LogMel`` on the waveform, ``encode_audio``, the
caption normalisation the checkpoint records, ``encode_text``.

``python tests/model/test_release_equivalence.py`` prints the figures (min cosine per kind, max |similarity
difference|).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

if __name__ == "__main__":  # run as a script: the helpers live one folder up
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import FIXTURES  # noqa: E402
from helpers.released_reference import (TEXT_ENCODER, keys_array, save_lightning, seeded_release,  # noqa: E402
                                        tiny_text_folder)
from helpers.seeded_weights import RATE, waveform  # noqa: E402
from salsa2.audio.frontends import LogMel  # noqa: E402
from salsa2.data.text_norm import normalize_for_model  # noqa: E402
from salsa2.model.checkpoint import load_checkpoint  # noqa: E402
from salsa2.model.release_import import (ReleaseImportError, import_release, map_state_dict,  # noqa: E402
                                         release_layout, release_layouts)

pytest.importorskip("transformers")

FIXTURE = {"salsa": "released_salsa_reference.npz", "dcase2025_baseline": "released_dcase2025_reference.npz"}
MIN_COS = 0.9999
# a similarity is a dot product of unit vectors; each side within cos 0.9999 of the reference moves it by at most
# |a - a'| + |t - t'| = 2 sqrt(2 (1 - 0.9999)) ~ 0.028; the test asks for far less
SIM_ATOL = 1e-3


def reference(kind: str) -> dict:
    with np.load(FIXTURES / FIXTURE[kind]) as z:
        return {k: z[k] for k in z.files}


def shapes_only(keys: np.ndarray) -> dict[str, torch.Tensor]:
    """A state dict with the fixture's keys and shapes (no values): what the format checks need."""
    out = {}
    for entry in keys:
        key, shape = str(entry).rsplit(":", 1)
        out[key] = torch.empty([int(s) for s in shape.split("x")] if shape else [], device="meta")
    return out


def strip(key: str) -> str:
    return ".".join(p for p in key.split(".") if p != "_orig_mod")


@pytest.mark.parametrize("kind", sorted(FIXTURE))
def test_the_source_format_maps_completely_and_the_other_kind_is_named(kind):
    """Every key the source repository saved is mapped or knowingly dropped by the importer of its kind; the other
    kind's importer refuses the file in one line that names the kind to give."""
    keys = shapes_only(reference(kind)["keys"])
    assert any("_orig_mod" in k for k in keys) == (kind == "dcase2025_baseline")
    state = {strip(k): v for k, v in keys.items()}  # what read_released returns
    mapped = map_state_dict(state, "x.ckpt", release_layout(kind))
    assert {k.split(".")[0] for k in mapped} == {"audio_encoder", "text_encoder", "audio_proj", "text_proj"}
    assert mapped["audio_proj.weight"].shape == (1024, 768) and mapped["text_proj.bias"].shape == (1024,)
    other = next(k for k in release_layouts() if k != kind)
    with pytest.raises(ReleaseImportError, match=f"x.ckpt: unexpected key .* give kind {kind}") as err:
        map_state_dict(state, "x.ckpt", release_layout(other))
    assert "\n" not in str(err.value)


def test_every_release_kind_has_an_importer():
    from salsa2.config.params import RELEASE_KINDS

    assert set(RELEASE_KINDS) == set(release_layouts())
    assert all(release_layout(k).kind == k for k in RELEASE_KINDS)


def imported_embeddings(kind: str, work: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """(audio (clips, D), text (captions, D), the reference) from the rebuilt checkpoint imported by salsa2."""
    ref = reference(kind)
    folder = tiny_text_folder(work / "text", kind)
    state, hyper = seeded_release(kind, folder)
    assert list(keys_array(state)) == list(ref["keys"])  # the released format: the same names and shapes
    path = save_lightning(work / "release.ckpt", state, hyper)
    del state
    out = import_release(release_layout(kind), path, work / "imported", text_model=TEXT_ENCODER[kind], sha256=False)
    path.unlink()
    model, info = load_checkpoint(out)
    model.eval()
    assert model.frontend.sample_rate == RATE
    logmel = LogMel(model.frontend)
    with torch.no_grad():
        audio = []
        for seconds in ref["seconds"]:
            mel = logmel(torch.from_numpy(waveform(float(seconds)))[None])
            audio.append(model.encode_audio(mel, torch.tensor([mel.shape[-1]]))[0].numpy())
        captions = [normalize_for_model(str(c), info["text_normalize"]) for c in ref["captions"]]
        text = model.encode_text(captions).numpy()
    return np.stack(audio), text, ref


def figures(audio: np.ndarray, text: np.ndarray, ref: dict) -> dict:
    def cos(a, b):
        return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    return {"audio_cos": cos(audio, ref["audio"]), "text_cos": cos(text, ref["text"]),
            "sim_diff": float(np.abs(text @ audio.T - ref["similarity"]).max())}


@pytest.mark.slow  # a real-size PaSST on 6 clips (up to 3 snippets each), a checkpoint of 0.35-0.5 GB: ~1-3 min
@pytest.mark.parametrize("kind", sorted(FIXTURE))
def test_imported_release_matches_its_source_repository(kind, tmp_path):
    audio, text, ref = imported_embeddings(kind, tmp_path)
    got = figures(audio, text, ref)
    assert got["audio_cos"].min() >= MIN_COS, dict(zip(ref["seconds"].tolist(), got["audio_cos"].tolist()))
    assert got["text_cos"].min() >= MIN_COS, got["text_cos"]
    assert got["sim_diff"] <= SIM_ATOL
    # the same ranking of the clips for every caption
    np.testing.assert_array_equal(np.argsort(-(text @ audio.T), 1), np.argsort(-ref["similarity"], 1))
    if kind == "dcase2025_baseline":  # d25_t6/predict.py scores with the mean of the product: dot / D
        np.testing.assert_allclose(ref["predict_scores"] * audio.shape[1], ref["similarity"], atol=1e-5)


if __name__ == "__main__":
    import tempfile

    for kind in sorted(FIXTURE):
        with tempfile.TemporaryDirectory() as tmp:
            got = figures(*imported_embeddings(kind, Path(tmp)))
        print(f"{kind}: min cos audio {got['audio_cos'].min():.7f} (per clip {np.round(got['audio_cos'], 7)}), "
              f"text {got['text_cos'].min():.7f}; max |similarity difference| {got['sim_diff']:.2e}")
