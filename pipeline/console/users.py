"""The console's users file: one JSON object, user name → role, language and an Argon2 hash.

Passwords are never stored, only ``argon2id`` hashes (argon2-cffi's defaults). The file is
written atomically with mode 0600. There is no default user and no default password.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pipeline.errors import ConsoleError

ROLES = ("viewer", "operator", "supervisor")
LANGS = ("en", "zh-CN")
NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD_CHARS = 8

_hasher = PasswordHasher()
#: verified against when the user does not exist, so a wrong name costs the same time
_DUMMY_HASH = _hasher.hash("not a password of anyone")


@dataclass(frozen=True, slots=True)
class User:
    """One console user.

    :param lang: preferred interface language, ``None``: the browser's
    """

    name: str
    role: str
    password_hash: str
    lang: str | None = None


class UsersFile:
    """The users of one console, read from and written to ``path``.

    :raises ConsoleError: the file exists but cannot be read
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.users: dict[str, User] = {}
        if self.path.exists():
            try:
                raw = json.loads(self.path.read_text())
                for name, u in raw.get("users", {}).items():
                    self.users[name] = User(name, u["role"], u["hash"], u.get("lang"))
            except (OSError, ValueError, KeyError, AttributeError) as exc:
                raise ConsoleError(f"users file {self.path} cannot be read: {exc}") from exc

    def save(self) -> None:
        """Write the file atomically, readable by its owner only."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "users": {
                u.name: {"role": u.role, "hash": u.password_hash, "lang": u.lang}
                for u in sorted(self.users.values(), key=lambda u: u.name)
            }
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(body, f, indent=2)
        tmp.replace(self.path)

    def add(self, name: str, password: str, role: str) -> User:
        """Add a user.

        :raises ConsoleError: bad name, role or password, or the user exists
        """
        if not NAME_RE.match(name):
            raise ConsoleError(f"bad user name {name!r} (letters, digits, _ . @ -; 1-64)")
        if name in self.users:
            raise ConsoleError(f"user {name!r} exists (use passwd)")
        _check_role(role)
        _check_password(password)
        self.users[name] = User(name, role, _hasher.hash(password))
        return self.users[name]

    def passwd(self, name: str, password: str, role: str | None = None) -> User:
        """Set a user's password (and role when given)."""
        old = self._get(name)
        _check_password(password)
        if role is not None:
            _check_role(role)
        self.users[name] = User(name, role or old.role, _hasher.hash(password), old.lang)
        return self.users[name]

    def set_lang(self, name: str, lang: str | None) -> None:
        """Set a user's interface language (``None``: follow the browser)."""
        if lang is not None and lang not in LANGS:
            raise ConsoleError(f"language must be one of {', '.join(LANGS)}")
        old = self._get(name)
        self.users[name] = User(name, old.role, old.password_hash, lang)

    def remove(self, name: str) -> None:
        self._get(name)
        del self.users[name]

    def verify(self, name: str, password: str) -> User | None:
        """The user when the password is right, else ``None`` (same cost either way)."""
        user = self.users.get(name)
        try:
            _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        return user

    def _get(self, name: str) -> User:
        try:
            return self.users[name]
        except KeyError:
            raise ConsoleError(f"no user {name!r}") from None


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ConsoleError(f"role must be one of {', '.join(ROLES)}")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise ConsoleError(f"password too short (at least {MIN_PASSWORD_CHARS} characters)")
