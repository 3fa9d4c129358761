"""Stage moments_demo: the long-recording demo, the demo's test clips placed at known times in one- to
five-minute backgrounds with their ground-truth windows (params: moments.demo; salsa2.moments.demo)."""

from common import parser, setup

from salsa2.config.params import moments_params
from salsa2.moments.demo import build_long_demo

if __name__ == "__main__":
    cli = parser(__doc__)
    cli.add_argument("--demo", required=True, help="the demo dataset (its test clips and captions)")
    cli.add_argument("--out", required=True, help="output: the long recordings and moments.jsonl")
    args = cli.parse_args()
    p = moments_params(setup()).demo
    build_long_demo(args.demo, args.out, recordings=p.recordings, min_seconds=p.min_seconds,
                    max_seconds=p.max_seconds, min_clips=p.min_clips, max_clips=p.max_clips, seed=p.seed)
