"""Caption normalisation modes (``text.normalize``): the authors', salsa2's earlier one, none."""

import pytest

from salsa2.config.params import ConfigError, TextParams
from salsa2.data.text_norm import normalize_for_model, normalize_mode


def test_modes_on_in_word_punctuation():
    caption = "A man's  high-pitched whistle, then... silence!"
    assert normalize_for_model(caption, "authors") == "a mans highpitched whistle then silence"
    assert normalize_for_model(caption, "spaces") == "a man s high pitched whistle then silence"
    assert normalize_for_model(caption, "none") == "A man's high-pitched whistle, then... silence!"


def test_booleans_keep_their_earlier_meaning():
    # checkpoints and params written before the modes existed recorded true/false
    assert normalize_mode(True) == "spaces" and normalize_mode(False) == "none"
    assert normalize_for_model("It's", True) == "it s"


def test_unknown_mode_is_a_config_error_naming_the_choices():
    with pytest.raises(ConfigError, match="authors"):
        TextParams(normalize="lower")
    assert TextParams().normalize == "spaces" and TextParams(normalize="authors").dropout is None
