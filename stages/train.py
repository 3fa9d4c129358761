"""Stages stage1@<encoder> and stage2@<encoder>: train one dual encoder, log curves with dvclive.

Multi-GPU: ``stage1.nproc`` / ``stage2.nproc`` N > 1 re-executes this script under
``python -m torch.distributed.run --standalone --nproc-per-node N`` (salsa2.training.distributed.launch_command), so
``dvc repro`` and ``dvc exp run`` train on N GPUs (gloo processes on CPU); rank 0 logs.
"""

import logging
import os
import sys

from common import best_epoch_summary, live_logger, setup_training

from salsa2.training.distributed import describe, launch_command
from salsa2.distill.ensemble import targets_path
from salsa2.training.stages import train_stage1, train_stage2

if __name__ == "__main__":
    stage, encoder = int(sys.argv[1]), sys.argv[2]
    params = setup_training()
    relaunch = launch_command((params.stage1 if stage == 1 else params.stage2).nproc, [__file__, *sys.argv[1:]])
    if relaunch is not None:
        logging.getLogger("stages.train").info("running %s", describe(relaunch))
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(relaunch[0], relaunch)
    frontend = params.audio_encoder(encoder).frontend
    main = int(os.environ.get("RANK", "0")) == 0
    live, on_epoch = live_logger(f"reports/train/stage{stage}-{encoder}") if main else (None, None)
    common = {"features_dir": f"data/features/{frontend}", "text_features": "data/text_features.npz",
              "on_epoch": on_epoch}
    if stage == 1:  # stage 1 trains on data.pretrain (= data.datasets when that list is empty)
        result = train_stage1(params, encoder, data_dir="data/pretrain", out_dir=f"models/stage1/{encoder}", **common)
    else:
        result = train_stage2(params, encoder, data_dir="data/prepared", init_dir=f"models/stage1/{encoder}",
                              targets_path=targets_path(params, encoder, "models/targets"),
                              out_dir=f"models/stage2/{encoder}", **common)
    if live is None:
        sys.exit(0)
    live.summary = best_epoch_summary(result.history, result.best_epoch)
    live.end()
