"""Credentials at rest: Fernet (AES-128-CBC + HMAC) with a key from the environment.

FANOUT_SECRET_KEY holds a urlsafe-base64 Fernet key. On embedded defaults with no key set, one
is generated once into FANOUT_HOME/secret.key (mode 0600) so a single machine just works;
deployments with several machines must set the same key everywhere. Decrypted credentials are
only ever handed to channels; they are never logged and never sent back to the UI.
"""

from __future__ import annotations

import json
import os
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from services.config import Settings
from services.errors import ValidationError


def _key(settings: Settings) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode()
    path = settings.resolved_home / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
    return path.read_bytes().strip()


def encrypt_credentials(settings: Settings, credentials: dict[str, Any]) -> bytes:
    return Fernet(_key(settings)).encrypt(json.dumps(credentials).encode("utf-8"))


def decrypt_credentials(settings: Settings, token: bytes | None) -> dict[str, Any]:
    if not token:
        return {}
    try:
        return json.loads(Fernet(_key(settings)).decrypt(token))
    except InvalidToken:
        raise ValidationError("stored credentials cannot be decrypted: FANOUT_SECRET_KEY changed?",
                              "账号凭据无法解密：密钥（FANOUT_SECRET_KEY）可能已更换") from None


def session_secret(settings: Settings) -> str:
    """The web session signing secret, derived from the credentials key."""
    import hashlib

    return hashlib.sha256(b"fanout-session:" + _key(settings)).hexdigest()
