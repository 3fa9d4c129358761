"""Stage ensemble: C-hat of every distinct teacher set (params: encoders, stage2.teachers, stage2.targets)
-> models/targets/<members joined by '+'>.npz, each computed once however many students read it."""

from common import setup_training

from salsa2.ensemble import build_ensembles

if __name__ == "__main__":
    for name, members in build_ensembles(setup_training(), "models/sims", "models/targets").items():
        print(f"targets {name}: mean of {members} (M={len(members)})")
