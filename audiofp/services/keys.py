"""API keys, roles and the audit log.

Keys are 32 random bytes, so a plain SHA-256 of the key is enough to store:
slow password hashes exist to stop guessing of low-entropy secrets, and 256
random bits cannot be guessed; a fast hash also keeps authentication to one
indexed lookup per request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from .. import store as db
from ..errors import ConflictError, NotFoundError, ParameterError
from ..store import ApiKeyRecord, AuditRecord, Role, Session, Store

#: The role names, as plain strings (what a command-line choice or a form offers).
ROLES = tuple(role.value for role in Role)

#: What each role may do. Reviewers are investigators who may also dispute uses
#: and reverse removals; only pipelines (and admins) write uploads and removals.
PERMISSIONS: dict[str, frozenset[str]] = {
    Role.PIPELINE: frozenset({"submit", "match", "remove", "events"}),
    Role.INVESTIGATOR: frozenset({"match", "read", "search", "events"}),
    Role.REVIEWER: frozenset({"match", "read", "search", "events", "dispute", "reverse"}),
    Role.ADMIN: frozenset(
        {"submit", "match", "remove", "events", "read", "search", "dispute", "reverse", "keys", "config"}
    ),
}

KEY_PREFIX = "afp_"


@dataclass(frozen=True)
class Actor:
    """Who is calling: an API key, or an operator at the command line."""

    key_id: int | None
    name: str
    role: Role

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())

    @property
    def label(self) -> str:
        return f"key:{self.name}" if self.key_id is not None else self.name


#: The operator running CLI commands (bulk ingest, key management).
CLI_ACTOR = Actor(key_id=None, name="cli", role=Role.ADMIN)


@dataclass(frozen=True)
class IssuedKey:
    """A new key: ``secret`` is shown once and never stored."""

    secret: str
    record: ApiKeyRecord


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(store: Store, *, name: str, role: str, actor: Actor = CLI_ACTOR) -> IssuedKey:
    """Issue a key with ``role``; the audit log records who issued it."""
    if role not in ROLES:
        raise ParameterError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    name = name.strip()
    if not name or len(name) > 255:
        raise ParameterError("key name must be 1-255 characters")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    with db.transaction(store) as session:
        record = db.insert_api_key(session, name=name, role=Role(role), key_hash=hash_key(secret),
                                   prefix=secret[:12])
        audit(session, actor, "key.create", f"key:{record.id}", {"name": name, "role": role})
    return IssuedKey(secret=secret, record=record)


def authenticate(store: Store, secret: str) -> Actor | None:
    """The actor a presented key stands for, or None if unknown or revoked."""
    if not secret or len(secret) > 200:
        return None
    with db.transaction(store, readonly=True) as session:
        record = db.find_api_key(session, hash_key(secret))
    if record is None or record.revoked_at is not None:
        return None
    return Actor(key_id=record.id, name=record.name, role=record.role)


def list_keys(store: Store) -> list[ApiKeyRecord]:
    """Every key, revoked ones included, in id order."""
    with db.transaction(store, readonly=True) as session:
        return db.list_api_keys(session)


def revoke_key(store: Store, key_id: int, *, actor: Actor = CLI_ACTOR) -> ApiKeyRecord:
    """Revoke a key; requests made with it are refused from now on."""
    with db.transaction(store) as session:
        # Key ids are 32-bit; a larger number cannot name a key (and would overflow the query).
        record = db.get_api_key(session, key_id) if 0 < key_id < 2**31 else None
        if record is None:
            raise NotFoundError(f"no API key with id {key_id}")
        if record.revoked_at is not None:
            raise ConflictError(f"API key {key_id} is already revoked")
        db.revoke_api_key(session, key_id)
        audit(session, actor, "key.revoke", f"key:{key_id}")
        revoked = db.get_api_key(session, key_id)
        assert revoked is not None  # read in this very transaction
        return revoked


def audit(session: Session, actor: Actor, action: str, target: str | None, detail: dict[str, Any] | None = None) -> None:
    """Write one audit entry in the caller's transaction."""
    db.insert_audit(session, key_id=actor.key_id, actor=actor.label, action=action, target=target, detail=detail)


def audit_log(store: Store, *, after_id: int = 0, limit: int = 100, action: str | None = None) -> list[AuditRecord]:
    """Audit entries after ``after_id``, oldest first; ``action`` keeps only that action."""
    with db.transaction(store, readonly=True) as session:
        return db.audit_entries(session, after_id=after_id, limit=limit, action=action)
