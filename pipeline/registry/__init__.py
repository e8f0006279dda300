"""The vessel registry and the watchlist: a real database (SQLite by default, PostgreSQL
when ``registry_url`` points at one), one schema and one set of migrations for both."""
