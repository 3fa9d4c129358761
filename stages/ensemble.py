"""Stage ensemble: the estimated correspondences (Primus et al. 2024, sec. 3).
Each teacher (a stage-1 model some student distils from, or a released model named released-<name> in
stage2.teachers) embeds the train set once -> <sims>/<teacher>.npz; then
C-hat, the mean of the teachers' similarities, once per distinct teacher set -> <targets>/<members joined by
'+'>.npz (params: encoders, stage2.teachers, stage2.targets)."""

from pathlib import Path

from common import parser, setup_training

from salsa2.distill.ensemble import teacher_sets
from salsa2.distill.similarities import dump_teacher
from salsa2.distill.targets import build_ensembles

if __name__ == "__main__":
    cli = parser(__doc__)
    cli.add_argument("--models", required=True, help="the stage-1 models, one folder per encoder")
    cli.add_argument("--released", required=True, help="the released models, one folder per entry of `released`")
    cli.add_argument("--data", required=True, help="the prepared tables (their train split)")
    cli.add_argument("--features", required=True, help="the log-mel caches, one folder per frontend")
    cli.add_argument("--text-features", required=True, help="the frozen text encoder's features (.npz)")
    cli.add_argument("--sims", required=True, help="output: each teacher's similarities")
    cli.add_argument("--targets", required=True, help="output: each teacher set's C-hat")
    args = cli.parse_args()
    models, features, sims = Path(args.models), Path(args.features), Path(args.sims)
    params = setup_training()
    sets = teacher_sets(params)
    for member in dict.fromkeys(m for members in sets.values() for m in members):
        model_dir = dump_teacher(params, member, models, args.released, args.data, features, args.text_features,
                                 sims / f"{member}.npz")
        print(f"similarities of {member} ({model_dir}): {sims / f'{member}.npz'}")
    for name, members in build_ensembles(params, args.sims, args.targets).items():
        print(f"targets {name}: mean of {members} (M={len(members)})")
