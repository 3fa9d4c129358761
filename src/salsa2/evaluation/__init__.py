"""Embedding splits, retrieval metrics, multi-relevance judgements, the evaluate stage and its plots."""
