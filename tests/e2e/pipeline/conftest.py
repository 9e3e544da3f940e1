"""Pipeline fixtures. A Postgres test asks for `pg_database` (tests/conftest.py): a database of
its own, at the head migration, dropped afterwards."""
