"""The vault: the device's secrets, sealed under a key derived from the passphrase.

Canonical JSON (docs/format.md, "Vault")::

    {"format": "fieldsync/vault", "version": 1,
     "kdf": {"alg": "argon2id13", "opslimit": 3, "memlimit": 268435456, "salt": hex16},
     "key": {"nonce": hex24, "ct": hex},      vault key under the Argon2id key; AD binds "kdf"
     "secrets": {"nonce": hex24, "ct": hex}}  the secret keys under a subkey of the vault key

Changing the passphrase makes a new vault with a new vault key (the store re-encrypts what is
under the old one: store/store.py, ``change_passphrase``). Destroying this file destroys every
key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fieldsync.core import crypto, encoding
from fieldsync.errors import DecryptionFailed, MalformedData, UnsupportedFormat, WrongPassphrase

FORMAT = "fieldsync/vault"
VERSION = 1
MAX_VAULT_BYTES = 64 * 1024
KDF_ALG = "argon2id13"
LABEL_SECRETS = b"fieldsync/vault-secrets/v1"


@dataclass(frozen=True)
class KdfParams:
    salt: bytes
    opslimit: int = crypto.KDF_OPSLIMIT_DEFAULT
    memlimit: int = crypto.KDF_MEMLIMIT_DEFAULT

    def to_json(self) -> dict[str, Any]:
        return {
            "alg": KDF_ALG,
            "memlimit": self.memlimit,
            "opslimit": self.opslimit,
            "salt": self.salt.hex(),
        }

    @classmethod
    def fresh(cls) -> KdfParams:
        return cls(salt=crypto.random_bytes(crypto.SALT_BYTES))


@dataclass(frozen=True)
class Secrets:
    """The secret keys a store holds, by name (``device_sign`` seed, ``device_box`` secret)."""

    keys: dict[str, bytes]

    def to_json(self) -> dict[str, Any]:
        return {"keys": {name: value.hex() for name, value in self.keys.items()}}

    def __repr__(self) -> str:
        return f"Secrets(<{len(self.keys)} keys>)"


def create(
    passphrase: str, secrets: Secrets, params: KdfParams | None = None
) -> tuple[bytes, bytes]:
    """A new vault; returns ``(vault file bytes, vault key)``."""
    vault_key = crypto.random_bytes(crypto.KEY_BYTES)
    return seal(passphrase, vault_key, secrets, params or KdfParams.fresh()), vault_key


def seal(passphrase: str, vault_key: bytes, secrets: Secrets, params: KdfParams) -> bytes:
    kek = crypto.derive_from_passphrase(passphrase, params.salt, params.opslimit, params.memlimit)
    kdf_json = params.to_json()
    key_nonce = crypto.random_bytes(crypto.NONCE_BYTES)
    key_ct = crypto.aead_encrypt(
        kek,
        key_nonce,
        vault_key,
        crypto.labelled(crypto.LABEL_VAULT_KEY, encoding.encode(kdf_json)),
    )
    secrets_nonce, secrets_ct = crypto.seal_with_key(
        crypto.derive_key(vault_key, LABEL_SECRETS),
        encoding.encode(secrets.to_json()),
        LABEL_SECRETS,
    )
    return encoding.encode(
        {
            "format": FORMAT,
            "kdf": kdf_json,
            "key": {"ct": key_ct.hex(), "nonce": key_nonce.hex()},
            "secrets": {"ct": secrets_ct.hex(), "nonce": secrets_nonce.hex()},
            "version": VERSION,
        }
    )


def read_params(data: bytes) -> KdfParams:
    """The KDF parameters of a vault, checked against the floor and the cap."""
    doc = _parse(data)
    kdf = doc["kdf"]
    params = KdfParams(bytes.fromhex(kdf["salt"]), kdf["opslimit"], kdf["memlimit"])
    crypto.check_kdf_params(params.opslimit, params.memlimit)
    return params


def unlock(data: bytes, passphrase: str) -> tuple[bytes, Secrets]:
    """Open a vault; returns ``(vault key, secrets)``. Wrong passphrase -> ``WrongPassphrase``."""
    doc = _parse(data)
    params = read_params(data)
    kek = crypto.derive_from_passphrase(passphrase, params.salt, params.opslimit, params.memlimit)
    key = doc["key"]
    try:
        vault_key = crypto.aead_decrypt(
            kek,
            key["nonce"],
            key["ct"],
            crypto.labelled(crypto.LABEL_VAULT_KEY, encoding.encode(doc["kdf"])),
            what="the vault key",
        )
    except DecryptionFailed as exc:
        raise WrongPassphrase() from exc
    sealed = doc["secrets"]
    plain = crypto.open_with_key(
        crypto.derive_key(vault_key, LABEL_SECRETS),
        sealed["nonce"],
        sealed["ct"],
        LABEL_SECRETS,
        what="the vault secrets",
    )
    value = encoding.decode(plain, what="vault secrets")
    try:
        keys = {name: bytes.fromhex(v) for name, v in value["keys"].items()}
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise MalformedData("the vault secrets are malformed") from exc
    return vault_key, Secrets(keys)


def _parse(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_VAULT_BYTES:
        raise MalformedData("the vault file is too large")
    doc = encoding.decode(data, what="the vault file", max_bytes=MAX_VAULT_BYTES)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise MalformedData("the vault file is not a fieldsync vault")
    version = doc.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise UnsupportedFormat(f"the vault was written by a newer fieldsync (format {version})")
    if version != VERSION:
        raise MalformedData("the vault file has an invalid version")
    try:
        kdf, key, sealed = doc["kdf"], doc["key"], doc["secrets"]
        ok = (
            kdf["alg"] == KDF_ALG
            and isinstance(kdf["opslimit"], int)
            and isinstance(kdf["memlimit"], int)
            and len(bytes.fromhex(kdf["salt"])) == crypto.SALT_BYTES
        )
        parsed = {
            "kdf": kdf,
            "key": {"nonce": bytes.fromhex(key["nonce"]), "ct": bytes.fromhex(key["ct"])},
            "secrets": {"nonce": bytes.fromhex(sealed["nonce"]), "ct": bytes.fromhex(sealed["ct"])},
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedData("the vault file is missing fields or has invalid values") from exc
    if not ok or len(parsed["key"]["nonce"]) != crypto.NONCE_BYTES:
        raise MalformedData("the vault file has invalid values")
    return parsed
