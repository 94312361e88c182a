"""Secrets at rest: values encrypted with Fernet, named in the config as ``"secret:NAME"``.

``openmanus secrets set NAME`` stores a value here; a setting whose value is ``"secret:NAME"``
(``model.api_key``, ``memory.embeddings_api_key``, an MCP server's ``env`` or ``headers``
value) gets the decrypted value when the settings load (``config.load_settings``), and only
then, in memory: the config file, the configuration history, ``config show`` and exports
hold the reference or ``****``, never the value.

The values live in ``secrets.json`` in the data folder (mode 0600), each a Fernet token
(``cryptography``). The key is in the system keyring when one is usable (python ``keyring``:
Secret Service, macOS Keychain, Windows Credential Locker), otherwise in ``secrets.key``
(0600) next to it. The file records where its key is, so a keyring that cannot be reached
later (an SSH session to a desktop) is reported instead of a new key being made that cannot
read the old values. The data folder is out of the sandbox's reach (sandbox/state_guard.py).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openmanus_tui.errors import ConfigError

SECRET_REF = "secret:"
STORE_FILE = "secrets.json"
KEY_FILE = "secrets.key"
KEYRING_SERVICE = "openmanus"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
FORMAT_VERSION = 1


class SecretError(ConfigError):
    """A secret that cannot be stored, found or decrypted: one line, exit 2."""


@dataclass(frozen=True)
class SecretInfo:
    name: str
    updated: float


def secret_name(value: Any) -> str | None:
    """``NAME`` for a ``"secret:NAME"`` reference, else None."""
    if isinstance(value, str) and value.startswith(SECRET_REF):
        return value[len(SECRET_REF):].strip()
    return None


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise SecretError(
            f"secret name {name!r}: use letters, digits, '_', '.' or '-' (at most 64, "
            "starting with a letter or digit)"
        )
    return name


def _usable_keyring() -> Any | None:
    """The system keyring backend when there is a real one (not keyring's fail or null
    backends, nor keyrings.alt's plain-text files), else None. Never raises."""
    try:
        import keyring
        from keyring.backends import chainer, fail
    except Exception:
        return None
    try:
        backend = keyring.get_keyring()
        if isinstance(backend, chainer.ChainerBackend):
            if not backend.backends:
                return None
        elif isinstance(backend, fail.Keyring) or getattr(backend, "priority", 0) <= 0:
            return None
        if type(backend).__module__.startswith("keyrings.alt"):
            return None
        return backend
    except Exception:
        return None


class SecretStore:
    """The encrypted secrets of one data folder."""

    def __init__(self, data_dir: Path, *, use_keyring: bool = True) -> None:
        self.data_dir = Path(data_dir).expanduser()
        self.path = self.data_dir / STORE_FILE
        self.key_path = self.data_dir / KEY_FILE
        self.use_keyring = use_keyring

    # ---- the file ------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"version": FORMAT_VERSION, "key": None, "secrets": {}}
        except OSError as exc:
            raise SecretError(f"{self.path}: cannot read the secrets: {exc.strerror}") from None
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or not isinstance(data.get("secrets"), dict):
                raise ValueError("not a secrets file")
        except ValueError:
            raise SecretError(f"{self.path}: damaged secrets file (not valid JSON)") from None
        return data

    def _save(self, data: dict[str, Any]) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{STORE_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    # ---- the key -------------------------------------------------------------------------
    @property
    def _account(self) -> str:
        # One key per data folder: a test's or a second profile's folder has its own.
        return f"secrets-key:{os.path.realpath(self.data_dir)}"

    def _read_key(self, data: dict[str, Any]) -> bytes | None:
        where = data.get("key")
        if where == "keyring":
            backend = _usable_keyring() if self.use_keyring else None
            value = None
            if backend is not None:
                try:
                    value = backend.get_password(KEYRING_SERVICE, self._account)
                except Exception:
                    value = None
            if not value:
                raise SecretError(
                    "the secrets key is in the system keyring, which cannot be reached now"
                    + ("" if self.use_keyring else " (secrets.keyring = false)"),
                    hint="Unlock the keyring (or log in to the desktop session) and try again.",
                )
            return value.encode()
        if where == "file":
            try:
                return self.key_path.read_bytes().strip()
            except OSError:
                raise SecretError(
                    f"{self.key_path}: the secrets key is missing: the stored secrets cannot "
                    "be decrypted",
                    hint="Remove secrets.json and store the secrets again.",
                ) from None
        return None

    def _make_key(self, data: dict[str, Any]) -> bytes:
        from cryptography.fernet import Fernet

        key = Fernet.generate_key()
        backend = _usable_keyring() if self.use_keyring else None
        if backend is not None:
            try:
                backend.set_password(KEYRING_SERVICE, self._account, key.decode())
                if backend.get_password(KEYRING_SERVICE, self._account) == key.decode():
                    data["key"] = "keyring"
                    return key
            except Exception:
                pass  # a locked or broken keyring: the key file below
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key)
        os.chmod(self.key_path, 0o600)  # an older file keeps its mode through O_TRUNC
        data["key"] = "file"
        return key

    def key_location(self) -> str:
        """Where the key is (for ``secrets list``): the keyring, the key file, or nowhere yet."""
        where = self._load().get("key")
        if where == "keyring":
            return "the system keyring"
        if where == "file":
            return str(self.key_path)
        return "no key yet"

    def _fernet(self, data: dict[str, Any], *, create: bool) -> Any:
        from cryptography.fernet import Fernet

        key = self._read_key(data)
        if key is None:
            if not create:
                return None
            key = self._make_key(data)
        try:
            return Fernet(key)
        except ValueError:
            raise SecretError("the secrets key is not a valid Fernet key") from None

    # ---- the secrets ---------------------------------------------------------------------
    def list(self) -> list[SecretInfo]:
        data = self._load()
        return [
            SecretInfo(name, float(entry.get("updated", 0)))
            for name, entry in sorted(data["secrets"].items())
            if isinstance(entry, dict)
        ]

    def get(self, name: str) -> str:
        from cryptography.fernet import InvalidToken

        data = self._load()
        entry = data["secrets"].get(name)
        if not isinstance(entry, dict) or "token" not in entry:
            raise SecretError(
                f"no secret named {name!r}", hint=f"Store it with: openmanus secrets set {name}"
            )
        fernet = self._fernet(data, create=False)
        if fernet is None:
            raise SecretError(f"secret {name!r}: the secrets file names no key")
        try:
            return fernet.decrypt(entry["token"].encode()).decode()
        except (InvalidToken, ValueError, UnicodeDecodeError):
            raise SecretError(
                f"secret {name!r} cannot be decrypted with the current key",
                hint=f"Store it again with: openmanus secrets set {name}",
            ) from None

    def set(self, name: str, value: str) -> None:
        check_name(name)
        if not value:
            raise SecretError(f"secret {name!r}: the value is empty; nothing stored")
        data = self._load()
        fernet = self._fernet(data, create=True)
        data["version"] = FORMAT_VERSION
        data["secrets"][name] = {
            "token": fernet.encrypt(value.encode()).decode(),
            "updated": time.time(),
        }
        self._save(data)

    def remove(self, name: str) -> None:
        data = self._load()
        if name not in data["secrets"]:
            raise SecretError(f"no secret named {name!r}")
        del data["secrets"][name]
        self._save(data)
