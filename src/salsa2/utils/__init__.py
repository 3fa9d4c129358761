"""Small helpers every concept uses: user errors, atomic file writes, name registries, downloads."""
