"""Audio decoding and log-mel frontends."""
