"""Estimated audio-caption correspondences: teachers' similarities, their mean, soft targets, relevances."""
