"""Export of rankings: preference pairs, agreement and snapshots."""
