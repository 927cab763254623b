"""The secret keys a store holds, and their names in the vault (core/vault.py's ``Secrets``)."""

from __future__ import annotations

from dataclasses import dataclass

from fieldsync.core import crypto, vault
from fieldsync.core.ids import fingerprint

KEY_DEVICE_SIGN = "device_sign"
KEY_DEVICE_BOX = "device_box"
KEY_ORG_READ = "org_read"


@dataclass(frozen=True)
class Identity:
    """Every secret key a store holds.

    A documenter's store holds a device signing key and box key. An administrator's store
    (``fieldsync admin init``) also holds the organisation's read key, and its signing key is
    the organisation's admin key.
    """

    signer: crypto.SigningPair
    box: crypto.BoxPair
    org_read: crypto.BoxPair | None = None
    # the vault's signing key, when ``signer`` is an admin key that succeeded it (kept in a
    # sealed setting, store/orgkeys.py): the vault is written with this one
    vault_signer: crypto.SigningPair | None = None

    @classmethod
    def generate(cls, *, admin: bool = False) -> Identity:
        org = crypto.BoxPair.generate() if admin else None
        return cls(crypto.SigningPair.generate(), crypto.BoxPair.generate(), org)

    @classmethod
    def from_secrets(cls, secrets: vault.Secrets) -> Identity:
        keys = secrets.keys
        org = keys.get(KEY_ORG_READ)
        return cls(
            crypto.SigningPair(keys[KEY_DEVICE_SIGN]),
            crypto.BoxPair(keys[KEY_DEVICE_BOX]),
            crypto.BoxPair(org) if org is not None else None,
        )

    def secrets(self) -> vault.Secrets:
        vault_signer = self.vault_signer or self.signer
        keys = {KEY_DEVICE_SIGN: vault_signer.seed, KEY_DEVICE_BOX: self.box.secret}
        if self.org_read is not None:
            keys[KEY_ORG_READ] = self.org_read.secret
        return vault.Secrets(keys)

    @property
    def is_admin(self) -> bool:
        return self.org_read is not None

    @property
    def device_id(self) -> str:
        return self.signer.public.hex()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.signer.public, self.box.public)
