"""Training: the loop, the two stages, batches, augmentation, precision, processes, resume, losses."""
