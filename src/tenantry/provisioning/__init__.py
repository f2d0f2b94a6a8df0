"""Durable tenant provisioning: a plan's ordered steps, each a job with a checkpoint."""
