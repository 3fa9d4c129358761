"""Stages stage1@<encoder> and stage2@<encoder>: train one dual encoder, log curves with dvclive.

Multi-GPU: ``stage1.nproc`` / ``stage2.nproc`` N > 1 re-executes this script with its arguments under
``python -m torch.distributed.run --standalone --nproc-per-node N`` (salsa2.training.distributed.launch_command), so
``dvc repro`` and ``dvc exp run`` train on N GPUs (gloo processes on CPU); rank 0 logs.
"""

import argparse
import logging
import os
import sys

from common import best_epoch_summary, live_logger, parser, setup_training

from salsa2.training.distributed import describe, launch_command
from salsa2.distill.ensemble import targets_path
from salsa2.training.two_stage import train_stage1, train_stage2


def arguments() -> argparse.Namespace:
    """``1 <encoder> ...`` or ``2 <encoder> ...``: the stage, the encoder and the paths it reads and writes."""
    cli = parser(__doc__)
    stages = cli.add_subparsers(dest="stage", required=True, metavar="{1,2}")
    for stage, data in ((1, "data.pretrain"), (2, "data.datasets")):
        sub = stages.add_parser(str(stage), help=f"stage {stage}")
        sub.add_argument("encoder", help="the entry of params `encoders`")
        sub.add_argument("--data", required=True, help=f"the prepared tables of {data}")
        sub.add_argument("--features", required=True, help="the log-mel cache of the encoder's frontend")
        sub.add_argument("--text-features", required=True, help="the frozen text encoder's features (.npz)")
        if stage == 2:
            sub.add_argument("--init", required=True, help="the stage-1 model it starts from")
            sub.add_argument("--targets", required=True, help="the folder of the ensembles' targets (C-hat)")
        sub.add_argument("--out", required=True, help="the model folder")
        sub.add_argument("--live", required=True, help="the dvclive folder (metrics.json, plots)")
    return cli.parse_args()


if __name__ == "__main__":
    args = arguments()
    stage, encoder = int(args.stage), args.encoder
    params = setup_training()
    relaunch = launch_command((params.stage1 if stage == 1 else params.stage2).nproc, [__file__, *sys.argv[1:]])
    if relaunch is not None:
        logging.getLogger("stages.train").info("running %s", describe(relaunch))
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(relaunch[0], relaunch)
    main = int(os.environ.get("RANK", "0")) == 0
    live, on_epoch = live_logger(args.live) if main else (None, None)
    common = {"features_dir": args.features, "text_features": args.text_features, "on_epoch": on_epoch}
    if stage == 1:  # stage 1 trains on data.pretrain (= data.datasets when that list is empty)
        result = train_stage1(params, encoder, data_dir=args.data, out_dir=args.out, **common)
    else:
        result = train_stage2(params, encoder, data_dir=args.data, init_dir=args.init,
                              targets_path=targets_path(params, encoder, args.targets), out_dir=args.out, **common)
    if live is None:
        sys.exit(0)
    live.summary = best_epoch_summary(result.history, result.best_epoch)
    live.end()
