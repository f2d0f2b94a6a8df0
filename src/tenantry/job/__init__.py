"""Jobs as operators and tenants see them: listing, stats, retry, cancel, retention."""
