"""Stage release@<name>: params ``released.<name>`` ({parts, sha256, kind, text_model}) -> a salsa2 checkpoint
folder (model.safetensors + config.json) of a model published by others (salsa2.model.release_fetch).

The parts are downloaded into the --parts folder, which is deliberately not a DVC output: DVC deletes a stage's
outputs before it runs the stage, so parts kept in an output would be fetched anew on every run. The --parts
folder is a git-ignored download cache (a broken-off part resumes there, a finished one is reused); the joined
checkpoint is written there and removed after the import. Delete the folder to free the space."""

from common import parser, setup

from salsa2.config.params import release_params
from salsa2.model.release_fetch import fetch_release

if __name__ == "__main__":
    cli = parser(__doc__)
    cli.add_argument("name", help="the entry of params `released`")
    cli.add_argument("--parts", required=True, help="the download cache of the parts (not a DVC output)")
    cli.add_argument("--out", required=True, help="the checkpoint folder written")
    args = cli.parse_args()
    spec = release_params(setup(), args.name)
    out = fetch_release(spec, args.parts, args.out)
    print(f"{args.name}: {len(spec.parts)} part(s) from {args.parts} imported into {out}")
