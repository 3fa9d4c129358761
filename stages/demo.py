"""Stage demo: synthesise the embedded demo dataset (params: demo)."""

from common import setup

from salsa2.data.demo import generate

if __name__ == "__main__":
    p = setup()["demo"]
    generate("data/demo", n_train=p["n_train"], n_val=p["n_val"], n_test=p["n_test"], seed=p["seed"],
             workers=p.get("workers", 2))
