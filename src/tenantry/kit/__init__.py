"""Small shared tools used by every domain."""
