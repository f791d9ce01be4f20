"""A database of its own for the site's processes a test starts (manage.py, uWSGI), in the profile's engine:
a SQLite file in the baseline, a database on the profile's PostgreSQL cluster (testing/site_profile.py) when tuned.
"""

import contextlib
import os
import shutil
import sqlite3
import uuid
from pathlib import Path

import psycopg
from psycopg import sql


def uses_postgresql() -> bool:
    """True when the suite's settings (the profile's) use PostgreSQL."""
    return os.environ.get("LAMPI_DB_ENGINE") == "postgresql"


def server_connection(dbname: str = "postgres") -> psycopg.Connection:
    """A connection to the profile's PostgreSQL as the site's user, which owns the private cluster."""
    return psycopg.connect(
        dbname=dbname,
        host=os.environ.get("LAMPI_DB_HOST", ""),
        port=os.environ.get("LAMPI_DB_PORT", ""),
        user=os.environ.get("LAMPI_DB_USER", "lampi"),
        autocommit=True,
    )


class SiteDatabase:
    """One empty database: `env` points the site's processes at it; `rows` and `execute` use it directly.

    SQL takes `%s` placeholders in both engines (written `?` for SQLite here).
    """

    def __init__(self, name: str):
        self.name = name

    @classmethod
    def create(cls, folder: Path) -> "SiteDatabase":
        if not uses_postgresql():
            return cls(str(folder / "db.sqlite3"))
        return cls._new_postgresql()

    @classmethod
    def _new_postgresql(cls, template: str = "") -> "SiteDatabase":
        """A database with a fresh name on the profile's cluster, empty or a copy of `template`."""
        database = cls(f"site_{uuid.uuid4().hex[:12]}")
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database.name))
        if template:
            create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with server_connection() as connection:
            connection.execute(create)
        return database

    @property
    def env(self) -> dict[str, str]:
        """The settings that point the site at this database (the engine and server are the profile's)."""
        return {"LAMPI_DB_NAME": self.name}

    def connect(self):
        if uses_postgresql():
            return server_connection(self.name)
        return contextlib.closing(sqlite3.connect(self.name, timeout=20, isolation_level=None))

    def rows(self, query: str, params=()) -> list[tuple]:
        with self.connect() as connection:
            return list(connection.execute(self._placeholders(query), params).fetchall())

    def execute(self, query: str, params=()) -> None:
        with self.connect() as connection:
            connection.execute(self._placeholders(query), params)

    def copy(self, folder: Path) -> "SiteDatabase":
        """A new database with this one's content (nobody may be connected to this one)."""
        if not uses_postgresql():
            shutil.copyfile(self.name, folder / "db.sqlite3")
            return SiteDatabase(str(folder / "db.sqlite3"))
        return self._new_postgresql(template=self.name)

    def drop(self) -> None:
        """Drops a PostgreSQL database, closing what is still connected (a SQLite file goes with its folder)."""
        if uses_postgresql():
            with server_connection() as connection:
                drop = "DROP DATABASE IF EXISTS {} WITH (FORCE)"
                connection.execute(sql.SQL(drop).format(sql.Identifier(self.name)))

    @staticmethod
    def _placeholders(query: str) -> str:
        return query if uses_postgresql() else query.replace("%s", "?")
