"""rationalyst-server: one import namespace for the repository's top-level folders.

pyproject.toml maps `supervisor/`, `server/` and `clients/` to
`rationalyst.supervisor`, `rationalyst.server` and `rationalyst.clients`.
"""
