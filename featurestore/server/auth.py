"""API keys of the HTTP feature server.

Keys come from the configuration: ``server.api_key`` (one key allowed on every feature store, best
set in ``FEATURESTORE_SERVER_API_KEY``) and ``server.api_keys`` (entries ``{name, sha256, stores}``:
the SHA-256 of a key, never the key, and the feature stores it may read; none listed = every one).
A request presents ``Authorization: Bearer <key>``. The presented key is hashed and compared with
every known hash in constant time (no early exit, so the time says nothing about which key came
close). No key or an unknown one: 401; a known key not allowed on this feature store: 403. Keys
and their hashes never appear in a response or a log line; a key is named by its ``name``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from featurestore.config import Config
from featurestore.errors import ConfigError

_HEX64 = re.compile(r"[0-9a-f]{64}")
KEY_PREFIX = "fsk_"


@dataclass(frozen=True)
class ApiKey:
    """One accepted key: its name (for people), the SHA-256 hex of the key, the stores it may read."""

    name: str
    sha256: str
    stores: tuple[str, ...] = ()  # empty = every feature store

    def allows(self, store: str) -> bool:
        """Whether this key may read feature store ``store``."""
        return not self.stores or store in self.stores


def key_digest(key: str) -> str:
    """The SHA-256 hex digest under which a key is kept."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    """A new random API key (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def api_keys_from_config(config: Config) -> list[ApiKey]:
    """The keys of ``server.api_key`` and ``server.api_keys``; a malformed entry is a ConfigError naming it."""
    server = config.values.get("server", {})
    keys: list[ApiKey] = []
    plain = server.get("api_key")
    if plain is not None:
        if not isinstance(plain, str) or len(plain) < 16:
            raise ConfigError("server.api_key must be a string of at least 16 characters")
        keys.append(ApiKey("server.api_key", key_digest(plain)))
    entries = server.get("api_keys") or []
    for i, entry in enumerate(entries):
        where = f"server.api_keys[{i}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where} must be a mapping with name, sha256 and stores")
        unknown = set(entry) - {"name", "sha256", "stores"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        name, digest, stores = entry.get("name"), entry.get("sha256"), entry.get("stores") or []
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}.name must be a non-empty string")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest.lower()):
            raise ConfigError(f"{where}.sha256 ({name}) must be the 64 hex digits of the key's SHA-256")
        if not isinstance(stores, Sequence) or isinstance(stores, str) or not all(isinstance(s, str) for s in stores):
            raise ConfigError(f"{where}.stores ({name}) must be a list of feature store names")
        keys.append(ApiKey(name, digest.lower(), tuple(stores)))
    return keys


@dataclass(frozen=True)
class Decision:
    """The outcome of checking a request: ``status`` 200, 401 or 403, and the key's name when known."""

    status: int
    key_name: str | None = None
    reason: str = ""


class Authenticator:
    """Checks a request's ``Authorization`` header against the configured keys."""

    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self.keys = list(keys)

    @property
    def enabled(self) -> bool:
        """Whether any key is configured (without keys every request is let through)."""
        return bool(self.keys)

    def _match(self, presented: str) -> ApiKey | None:
        digest = key_digest(presented).encode()
        found = None
        for key in self.keys:  # every key is compared: the time does not depend on which one matches
            if hmac.compare_digest(digest, key.sha256.encode()) and found is None:
                found = key
        return found

    def check(self, authorization: str | None, store: str) -> Decision:
        """Decide on a request to feature store ``store`` carrying ``authorization``."""
        if not self.enabled:
            return Decision(200)
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return Decision(401, reason="an API key is required: send 'Authorization: Bearer <key>'")
        key = self._match(presented.strip())
        if key is None:
            return Decision(401, reason="the API key is not valid")
        if not key.allows(store):
            return Decision(403, key.name, f"API key '{key.name}' may not read feature store '{store}'")
        return Decision(200, key.name)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to any address


def describe_keys(keys: Sequence[ApiKey]) -> list[dict[str, Any]]:
    """The keys as they may be shown: names and stores, never the hashes."""
    return [{"name": k.name, "stores": list(k.stores) or ["*"]} for k in keys]
