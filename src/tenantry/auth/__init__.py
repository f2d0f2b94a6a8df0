"""Who is calling: access tokens, their keys, and the dependencies routes declare."""
