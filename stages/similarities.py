"""Stage similarities@<encoder>: the stage-1 model's train-set audio x caption similarities."""

import sys

from common import setup_training

from salsa2.similarities import dump_similarities

if __name__ == "__main__":
    encoder = sys.argv[1]
    params = setup_training()
    frontend = params.audio_encoder(encoder).frontend
    dump_similarities(params, f"models/stage1/{encoder}", "data/prepared", f"data/features/{frontend}",
                      "data/text_features.npz", f"models/sims/{encoder}.npz")
