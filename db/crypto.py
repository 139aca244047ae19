"""Personal data at rest: authenticated encryption of fields and blind indexes for lookups.

A dump of the database or a backup must not show who reported, which child, which number.
`EncryptedText` / `EncryptedJSON` columns hold AES-GCM ciphertext (random 96-bit nonce,
authenticated: an altered value or the wrong key raises, it never reads as other data);
`blind_index` gives a keyed HMAC of a value for the lookups that need equality (phone
threading, duplicate matching, caller blocks), since ciphertext cannot be searched;
`name_index` the keyed hashes a search by part of a child's name looks for.

Keys: `HOTLINE_DATA_KEY` (kept apart from the token key, so rotating one leaves the other),
or the file `data_key` in the data dir, generated once. Either holds a key ring, newest
first (comma- or line-separated; each entry urlsafe base64 of 32 bytes, or any passphrase,
hashed to 32 bytes). Values are written under the newest key and carry its key id
(`<kid>:<base64>`), so older ones still read while `hotline keys rotate` re-encrypts them.
The blind-index key derives from the oldest entry, so indexes stay valid across rotations.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlalchemy.sql import operators

from db.settings import Settings, get_settings

KEY_FILE = "data_key"
_NONCE = 12


class DataKeyError(RuntimeError):
    """A value written under a key the ring no longer holds, or a ring that cannot be used."""


def _key_bytes(entry: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(entry.encode())
        if len(raw) == 32:
            return raw
    except ValueError:
        pass
    return hashlib.sha256(entry.encode()).digest()


def key_id(key: bytes) -> str:
    """A short public name of a key (a keyed hash of nothing: it reveals nothing of the key)."""
    return hmac.new(key, b"hotline data key id", hashlib.sha256).hexdigest()[:8]


def new_key_entry() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _entries(text: str) -> list[str]:
    return [e for e in text.replace(",", "\n").split() if e]


def write_new(path: Path, text: str) -> bool:
    """Create `path` holding `text` (0600) atomically: complete or absent, never empty.

    The content is written to a private temporary file first and linked into place; a
    second process racing us finds the link taken and reads the winner's file instead.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def _replace(path: Path, text: str) -> None:
    """Replace `path` by `text` atomically (readers see the old ring or the new one)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def ring_entries(settings: Settings) -> list[str]:
    """The key ring's entries, newest first; a data dir without one gets one generated."""
    if settings.hotline_data_key:
        return _entries(settings.hotline_data_key)
    path = Path(settings.hotline_data_dir) / KEY_FILE
    if not path.exists():
        write_new(path, new_key_entry() + "\n")
    entries = _entries(path.read_text())
    if not entries:
        raise DataKeyError(f"{path} 中没有数据密钥")
    return entries


@dataclass(frozen=True)
class KeyRing:
    current: str  # the key id new values are written under
    ciphers: dict[str, AESGCM]
    index_key: bytes

    @classmethod
    def of(cls, entries: list[str]) -> "KeyRing":
        keys = [_key_bytes(e) for e in entries]
        return cls(
            current=key_id(keys[0]),
            ciphers={key_id(k): AESGCM(k) for k in keys},
            index_key=hmac.new(keys[-1], b"blind-index", hashlib.sha256).digest(),
        )

    @property
    def index_key_id(self) -> str:
        """A public name of the blind-index key (a keyed hash of nothing), recorded in the
        database (`index_key`) so a ring without its oldest key is refused at start
        (dispatch.ops.index_key)."""
        return hmac.new(self.index_key, b"hotline index key id", hashlib.sha256).hexdigest()[:16]


_configured: list[Settings] = []


def configure(settings: Settings) -> None:
    """Use these settings' ring in this process (an app built with its own settings)."""
    _configured[:] = [settings]


@cache
def _ring_for(data_key: str | None, data_dir: str) -> KeyRing:
    settings = Settings(hotline_data_key=data_key, hotline_data_dir=Path(data_dir))
    return KeyRing.of(ring_entries(settings))


_CHECK_SECONDS = 2.0
_seen: dict[str, tuple[float, float]] = {}  # data dir → (key file checked at, its mtime)


def ring() -> KeyRing:
    """The ring in use. A ring from the data dir is read again when its file changes (a
    `hotline keys rotate` next to running services: they write under the new key within
    seconds), looked at no more than every two seconds."""
    settings = _configured[0] if _configured else get_settings()
    data_dir = str(settings.hotline_data_dir)
    if not settings.hotline_data_key:
        # The key file's path is built only when it is looked at: building it on every
        # call was most of the cost of opening a sealed value (the matching job opens
        # dozens per case).
        checked, mtime = _seen.get(data_dir, (0.0, 0.0))
        now = time.monotonic()
        if now - checked > _CHECK_SECONDS:
            try:
                changed = os.stat(Path(data_dir) / KEY_FILE).st_mtime
            except FileNotFoundError:
                changed = 0.0
            if changed != mtime:
                _ring_for.cache_clear()
            _seen[data_dir] = (now, changed)
    return _ring_for(settings.hotline_data_key, data_dir)


def reload() -> None:
    """Forget the cached ring (after a rotation in this process, or in tests)."""
    _ring_for.cache_clear()
    _seen.clear()


def encrypt(value: str) -> str:
    keys = ring()
    nonce = secrets.token_bytes(_NONCE)
    kid = keys.current
    sealed = keys.ciphers[kid].encrypt(nonce, value.encode(), kid.encode())
    return f"{kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt(token: str) -> str:
    """The plain text; raises on an altered value or a key the ring does not hold.

    An unknown key id reloads the ring once: another process may have rotated it.
    """
    kid, _, body = token.partition(":")
    cipher = ring().ciphers.get(kid)
    if cipher is None:
        reload()
        cipher = ring().ciphers.get(kid)
        if cipher is None:
            raise DataKeyError(f"数据密钥 {kid} 不在密钥环中")
    blob = base64.urlsafe_b64decode(body.encode())
    return cipher.decrypt(blob[:_NONCE], blob[_NONCE:], kid.encode()).decode()


def is_current(token: str | None) -> bool:
    """Written under the newest key (nothing for `hotline keys rotate` to do)."""
    return token is None or token.startswith(ring().current + ":")


def blind_index(kind: str, value: str) -> str:
    """Keyed HMAC-SHA256 hex of `kind` and the value (spaces dropped, letters upper-case).

    Callers normalize first (a phone to E.164, a name as duplicate matching compares it);
    `kind` keeps a phone and an ID number with the same digits apart.
    """
    normalized = "".join(value.split()).upper()
    return keyed_hash(f"{kind}:{normalized}".encode())


def keyed_hash(data: bytes) -> str:
    """HMAC-SHA256 hex under the blind-index key: a hash of personal data that nobody
    holding only the database can test guesses against."""
    return hmac.new(ring().index_key, data, hashlib.sha256).hexdigest()


def phone_index(phone: str | None) -> str | None:
    """The blind index of a (normalized) phone number, the one every phone lookup uses;
    None for no number (or one retention cleared), which matches nothing."""
    return blind_index("phone", phone) if phone else None


# What names are compared after (duplicate matching): case, spaces and punctuation dropped.
NAME_NOISE = " \u3000\t\r\n-_,.;:，。；：、#＃()（）【】[]/\\'\"“”"


def name_key(text: str | None) -> str:
    """A name or address as duplicate matching compares it: 王 小红 and 王小红 are one."""
    if not text:
        return ""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).lower()
                   if ch not in NAME_NOISE)


# A search by part of a name needs this many characters: one character is in too many names.
NAME_QUERY_MIN = 2


def name_index(text: str | None) -> list[str]:
    """A child's name as keyed hashes of each pair of consecutive characters (王小红 → 王小,
    小红), so a search for two or more consecutive characters of a name finds it without the
    name being stored plain. A search's own pairs (the same function) must all be among a
    name's: for names of two to four characters, that is a name containing the text."""
    key = name_key(text)
    return list(dict.fromkeys(blind_index("name2", key[i:i + 2]) for i in range(len(key) - 1)))


def seal(value: str | None) -> str | None:
    """A text as `EncryptedText` stores it, for statements that bind values themselves."""
    return value if not value else encrypt(value)


def seal_json(value: Any) -> str | None:
    return None if value is None else encrypt(json.dumps(value, ensure_ascii=False))


def open_json(token: str | None) -> Any:
    return None if token is None else json.loads(decrypt(token))


# Ciphertext never equals anything (a fresh nonce each time): comparing it in SQL would
# silently match nothing, so these raise instead and point at the blind index.
_REFUSED = {
    operators.eq, operators.ne, operators.in_op, operators.not_in_op, operators.like_op,
    operators.ilike_op, operators.contains_op, operators.icontains_op, operators.startswith_op,
    operators.istartswith_op, operators.endswith_op, operators.iendswith_op, operators.lt,
    operators.gt, operators.le, operators.ge,
}


class _Sealed(sa.types.TypeDecorator.Comparator, sa.Text.Comparator):
    __slots__ = ()

    def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
        if op in _REFUSED:
            raise TypeError(f"{self.expr} is encrypted: compare its blind index instead")
        return super().operate(op, *other, **kwargs)

    def reverse_operate(self, op: Any, other: Any, **kwargs: Any) -> Any:
        if op in _REFUSED:
            raise TypeError(f"{self.expr} is encrypted: compare its blind index instead")
        return super().reverse_operate(op, other, **kwargs)


class EncryptedText(sa.types.TypeDecorator):
    """A text column stored as authenticated ciphertext (see the module's docstring)."""

    impl = sa.Text
    cache_ok = True
    comparator_factory = _Sealed

    # An empty value stays empty (a removed SMS body, a number retention cleared): its
    # length shows in ciphertext anyway, and SQL can then tell what is left to remove.
    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return seal(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return value if not value else decrypt(value)


class EncryptedJSON(sa.types.TypeDecorator):
    """A JSON value (a reporter's or child's details, a partner's payload) as ciphertext."""

    impl = sa.Text
    cache_ok = True
    comparator_factory = _Sealed

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return seal_json(value)

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return open_json(value)


_DERIVED: dict[type, dict[str, Callable[[Any], str | None]]] = {}


def indexed(**derive: Callable[[Any], str | None]) -> Callable[[type], type]:
    """Class decorator: these blind-index attributes are computed from the row on every
    flush, so no ORM write can leave a stale or missing index behind."""

    def register(cls: type) -> type:
        _DERIVED[cls] = derive
        return cls

    return register


@event.listens_for(Session, "before_flush")
def _fill_indexes(session: Session, context: Any, instances: Any) -> None:
    for row in (*session.new, *session.dirty):
        for attr, derive in _DERIVED.get(type(row), {}).items():
            value = derive(row)
            if getattr(row, attr, None) != value:
                setattr(row, attr, value)


def rotate_key_file(settings: Settings) -> str:
    """Put a new key at the front of the data dir's ring; returns its key id.

    A ring given by HOTLINE_DATA_KEY cannot be written from here: the operator puts the new
    key first in the environment, restarts, and runs the re-encryption.
    """
    if settings.hotline_data_key:
        raise DataKeyError(
            "数据密钥由 HOTLINE_DATA_KEY 提供：请把新密钥放在最前（逗号分隔，旧密钥保留在后），"
            "重启服务后运行 hotline keys rotate --reencrypt-only"
        )
    path = Path(settings.hotline_data_dir) / KEY_FILE
    entries = ring_entries(settings)
    entry = new_key_entry()
    _replace(path, "\n".join([entry, *entries]) + "\n")
    reload()
    return key_id(_key_bytes(entry))
