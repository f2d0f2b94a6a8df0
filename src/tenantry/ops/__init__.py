"""The operations surface: health, readiness and metrics."""
