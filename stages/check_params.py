"""Stage params: validate the whole params.yaml (salsa2.config.params.check_params) before any other stage runs.

Every other stage depends on its output, and it depends on every key of params.yaml, so a typo (``augmnet:``), a
value of the wrong type or out of range (``stage1.epochs: three``, ``stage1.batch_size: 0``) or an unknown choice
(``dvc exp run -S loss=nosuch``) ends ``dvc repro`` / ``dvc exp run`` within seconds, in one line naming the key,
before a stage deletes its outputs to run. The output's content never varies, so a valid change re-runs only the
stages whose own params changed."""

from pathlib import Path

from common import parser, setup

from salsa2.utils.fsutil import atomic_path

if __name__ == "__main__":
    cli = parser(__doc__)
    cli.add_argument("--out", required=True, help="output: a marker every other stage depends on")
    args = cli.parse_args()
    setup()  # raises ConfigError (one line, exit 2) on a bad params.yaml
    with atomic_path(Path(args.out)) as tmp:
        tmp.write_text("params.yaml passed salsa2.config.params.check_params\n")
