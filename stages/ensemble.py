"""Stage ensemble: the estimated correspondences (Primus et al. 2024, sec. 3).
Each teacher (a stage-1 model some student
distils from) embeds the train set once -> models/sims/<encoder>.npz; then C-hat, the mean of the teachers'
similarities, once per distinct teacher set -> models/targets/<members joined by '+'>.npz
(params: encoders, stage2.teachers, stage2.targets)."""

from common import setup_training

from salsa2.distill.ensemble import teacher_sets
from salsa2.distill.similarities import dump_similarities
from salsa2.distill.targets import build_ensembles

if __name__ == "__main__":
    params = setup_training()
    sets = teacher_sets(params)
    for encoder in dict.fromkeys(m for members in sets.values() for m in members):
        dump_similarities(params, f"models/stage1/{encoder}", "data/prepared",
                          f"data/features/{params.encoders[encoder]}", "data/text_features.npz",
                          f"models/sims/{encoder}.npz")
        print(f"similarities of stage-1 model {encoder}: models/sims/{encoder}.npz")
    for name, members in build_ensembles(params, "models/sims", "models/targets").items():
        print(f"targets {name}: mean of {members} (M={len(members)})")
