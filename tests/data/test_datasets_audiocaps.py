"""AudioCaps: published caption CSVs from a local mirror; clips from the user's folder and from a clip
mirror; missing clips are reported, not fatal."""

from __future__ import annotations

import csv
import shutil

import pytest
from helpers.file_server import FileServer, write_clip

from salsa2.data.datasets import DATASETS
from salsa2.data.prepare import check_rejects, prepare
from salsa2.data.raw_shards import pack
from salsa2.data.tables import TooManyRejects, read_tables
from salsa2.features.logmel_cache import SpectrogramCache, build_cache
from salsa2.audio.frontends import FrontendConfig

ROWS = {  # csv -> rows (audiocap_id, youtube_id, start_time, caption)
    "train": [(1, "r1nicOVtvkQ", 130, "A woman talks nearby as water pours"),
              (2, "UDGBjjwyaqE", 20, "Multiple clanging and clanking sounds"),
              (3, "gone-video1", 30, "A dog barks")],
    "val": [(10 + k, "abc-DEF_123", 0, f"Wind blows {k}") for k in range(5)],
    "test": [(20 + k, "xyz_987", 40, f"Engine idles {k}") for k in range(5)],
}


def test_audiocaps_local_folder_mirror_and_missing(tmp_path):
    pub = tmp_path / "pub"
    for split, rows in ROWS.items():
        (pub / "dataset").mkdir(parents=True, exist_ok=True)
        with open(pub / "dataset" / f"{split}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["audiocap_id", "youtube_id", "start_time", "caption"])
            w.writerows(rows)
    mine = tmp_path / "my_clips"  # the user's own copy: aac-datasets naming and AudioSet naming
    write_clip(mine / "train" / "r1nicOVtvkQ_130.ogg", seed=1)
    write_clip(mine / "Yabc-DEF_123.mp3", seed=2)
    write_clip(pub / "clips" / "train" / "UDGBjjwyaqE_20.flac", seed=3)  # only on the clip mirror
    write_clip(pub / "clips" / "test" / "xyz_987_40.flac", seed=4)
    with FileServer(pub) as srv:
        prepared = DATASETS.build(
            "audiocaps", root=str(tmp_path / "ac"), audio_dir=str(mine), base_url=f"{srv.url}/dataset",
            mirror=srv.url + "/clips/{split}/{youtube_id}_{start_time}.flac",
        )
        clip_requests = sorted(p for p, _ in srv.requests if p.startswith("/clips"))
    audio = prepared.audio.set_index("audio_id")
    assert audio["split"].to_dict() == {"audiocaps/r1nicOVtvkQ_130": "train", "audiocaps/UDGBjjwyaqE_20": "train",
                                        "audiocaps/abc-DEF_123_0": "val", "audiocaps/xyz_987_40": "test"}
    assert audio.loc["audiocaps/abc-DEF_123_0", "path"].endswith("my_clips/Yabc-DEF_123.mp3")
    assert audio.loc["audiocaps/UDGBjjwyaqE_20", "path"] == str(tmp_path / "ac/audio/train/UDGBjjwyaqE_20.flac")
    # clips found locally are not requested from the mirror; train has 1 caption, val/test 5
    assert clip_requests == ["/clips/test/xyz_987_40.flac", "/clips/train/UDGBjjwyaqE_20.flac",
                             "/clips/train/gone-video1_30.flac"]
    assert prepared.captions.groupby("audio_id").size().to_dict() == {
        "audiocaps/UDGBjjwyaqE_20": 1, "audiocaps/abc-DEF_123_0": 5, "audiocaps/r1nicOVtvkQ_130": 1,
        "audiocaps/xyz_987_40": 5}
    assert prepared.rejects[["audio_id", "reason"]].values.tolist() == [["audiocaps/gone-video1_30", "missing"]]
    assert "HTTP 404" in prepared.rejects["detail"].iloc[0]
    # ogg, mp3 and flac clips all decode into the cache
    cfg = FrontendConfig(sample_rate=8000, n_fft=256, win_length=200, hop_length=80, n_mels=16, f_max=4000.0)
    assert build_cache(tmp_path / "cache", prepared.audio, cfg, workers=1).empty
    assert len(SpectrogramCache(tmp_path / "cache")) == 4


def test_audiocaps_without_audio_reports_every_clip_missing(tmp_path):
    (tmp_path / "ac" / "csv").mkdir(parents=True)
    with open(tmp_path / "ac" / "csv" / "val.csv", "w", newline="") as f:
        csv.writer(f).writerows([["audiocap_id", "youtube_id", "start_time", "caption"], [1, "a", 0, "x"]])
    prepared = DATASETS.build("audiocaps", root=str(tmp_path / "ac"), splits=["val"], download=False)
    assert prepared.audio.empty
    assert prepared.rejects["reason"].tolist() == ["missing"]
    assert "not redistributed" in prepared.rejects["detail"].iloc[0]


def test_audiocaps_download_packs_the_users_clips_and_missing_ones_stay_within_the_allowance(tmp_path):
    """The documented set-up (presets/paper-audiocaps.yaml): download@audiocaps with ``audio_dir`` and
    ``copy_audio`` packs the clips it finds, so a ``raw: audiocaps`` entry (no audio_dir) finds them; the one
    video gone from YouTube (1 of 10 clips) passes the entry's ``max_reject_share`` and fails the 5 % default."""
    pub = tmp_path / "pub" / "dataset"
    pub.mkdir(parents=True)
    rows = {"train": [(i, f"vid{i:02d}", 30, f"Sound number {i}") for i in range(8)],
            "val": [(100 + k, "valvid", 0, f"Wind {k}") for k in range(5)],
            "test": [(200 + k, "testvid", 10, f"Engine {k}") for k in range(5)]}
    for split, split_rows in rows.items():
        with open(pub / f"{split}.csv", "w", newline="") as f:
            csv.writer(f).writerows([("audiocap_id", "youtube_id", "start_time", "caption"), *split_rows])
    mine = tmp_path / "my_audiocaps"
    for i in range(7):  # vid07 is gone
        write_clip(mine / f"vid{i:02d}_30.flac", seed=i, fmt="FLAC")
    write_clip(mine / "Yvalvid.wav", seed=20)
    write_clip(mine / "testvid_10.wav", seed=21)
    with FileServer(tmp_path / "pub") as srv:
        DATASETS.build("audiocaps", root=str(tmp_path / "unpacked/audiocaps"), audio_dir=str(mine),
                       copy_audio=True, base_url=f"{srv.url}/dataset")
    pack(tmp_path / "unpacked/audiocaps", tmp_path / "raw/audiocaps")
    shutil.rmtree(tmp_path / "unpacked")
    mine.rename(tmp_path / "gone")  # the user's copy is not needed any more
    entry = {"name": "audiocaps", "raw": "audiocaps", "max_reject_share": 0.15, "args": {"download": False}}
    prepare([entry], tmp_path / "prepared", tmp_path / "raw", tmp_path / "unpacked")
    audio, _ = read_tables(tmp_path / "prepared")
    assert len(audio) == 9 and all(str(tmp_path / "unpacked/audiocaps/audio") in p for p in audio["path"])
    check_rejects([entry], tmp_path / "prepared", 0.05)
    with pytest.raises(TooManyRejects, match=r"1 of 10 clips rejected \(10.0% > data.max_reject_share 5.0%\)"):
        check_rejects([{k: v for k, v in entry.items() if k != "max_reject_share"}], tmp_path / "prepared", 0.05)
