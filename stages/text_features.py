"""Stage text_features: pooled features of every caption from the frozen text encoder (params: text)."""

from common import parser, setup_training

from salsa2.features.text_cache import build_text_features

if __name__ == "__main__":
    cli = parser(__doc__)
    cli.add_argument("--data", required=True, nargs="+", help="the prepared folders whose captions are encoded")
    cli.add_argument("--out", required=True, help="the features file (.npz)")
    args = cli.parse_args()
    t = setup_training().text
    build_text_features(args.data, t.model, t.max_length, t.normalize, t.pooling, args.out)
