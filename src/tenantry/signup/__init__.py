"""Public self-serve signup: sessions, email codes, abuse limits, expiry."""
