"""The dual encoder, its audio and text encoders, trained checkpoints and pretrained weights."""
