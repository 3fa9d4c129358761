"""Stage demo: synthesise the embedded demo dataset (params: demo)."""

from common import parser, setup

from salsa2.data.demo import generate

if __name__ == "__main__":
    cli = parser(__doc__)
    cli.add_argument("--out", required=True, help="the demo dataset folder")
    args = cli.parse_args()
    p = setup()["demo"]
    generate(args.out, n_train=p["n_train"], n_val=p["n_val"], n_test=p["n_test"], seed=p["seed"],
             workers=p.get("workers", 2))
