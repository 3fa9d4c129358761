"""Cached inputs of training and evaluation: log-mel shards, text features, splits and batches."""
