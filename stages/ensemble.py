"""Stage ensemble@<student>: C-hat, the mean of the teachers' similarity matrices (params: stage2.teachers)."""

import sys

from common import setup_training

from salsa2.pipeline import build_ensemble

if __name__ == "__main__":
    student = sys.argv[1]
    members = build_ensemble(setup_training(), student, "models/sims", f"models/targets/{student}.npz")
    print(f"targets for {student}: mean of {members} (M={len(members)})")
