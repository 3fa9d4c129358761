"""Datasets as published -> the common Parquet tables; the embedded demo; archives and raw shards."""
