"""Moments in long recordings: text query -> [start, end, score] windows (DCASE 2026 task 6)."""
