"""Every cryptographic operation of fieldsync, and the only module that imports ``nacl``.

Each use carries its own purpose label (``LABEL_*``), written in front of whatever is signed,
hashed, authenticated or derived, so that bytes made for one purpose are never accepted for
another. Nothing here touches disk, network or console.
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import nacl.bindings as sodium
import nacl.exceptions
import nacl.pwhash.argon2id as argon2id
import nacl.utils
from nacl.public import Box, PrivateKey, PublicKey, SealedBox
from nacl.signing import SigningKey, VerifyKey

from fieldsync.errors import DecryptionFailed, KdfParamsRefused, MalformedData, SignatureInvalid

LABEL_ENTRY = b"fieldsync/entry/v1"
LABEL_ENTRY_ID = b"fieldsync/entry-id/v1"
LABEL_COMMIT = b"fieldsync/commit/v1"
LABEL_BLOB = b"fieldsync/blob/v1"
LABEL_BLOB_ID = b"fieldsync/blob-id/v1"
LABEL_VAULT_KEY = b"fieldsync/vault-key/v1"
LABEL_FINGERPRINT = b"fieldsync/fingerprint/v1"
LABEL_INVITE = b"fieldsync/invite/v1"
LABEL_BATCH = b"fieldsync/batch/v1"
LABEL_BATCH_ID = b"fieldsync/batch-id/v1"
LABEL_RECEIPT = b"fieldsync/receipt/v1"
LABEL_ENROL = b"fieldsync/enrol/v1"
LABEL_ENROL_BOX = b"fieldsync/enrol-box/v1"
LABEL_REQUEST = b"fieldsync/request/v1"
LABEL_EVIDENCE = b"fieldsync/evidence/v1"
LABEL_ORG_STATEMENT = b"fieldsync/org-statement/v1"
LABEL_ORG_STATEMENT_ID = b"fieldsync/org-statement-id/v1"
LABEL_KEY_BUNDLE = b"fieldsync/key-bundle/v1"
LABEL_ORG_BACKUP = b"fieldsync/org-backup/v1"
LABEL_SHARE_CHECK = b"fieldsync/share-check/v1"
LABEL_NEXT_RECEIPT_KEY = b"fieldsync/next-receipt-key/v1"

KEY_BYTES = 32
NONCE_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES  # 24
AEAD_TAG_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES  # 16
SIGNATURE_BYTES = 64
BOX_PROOF_BYTES = 40 + KEY_BYTES  # BoxPair.prove: nonce (24) + Poly1305 tag (16) + the hash
SALT_BYTES = argon2id.SALTBYTES  # 16
SEAL_BYTES = 48 + KEY_BYTES  # X25519 ephemeral key (32) + Poly1305 tag (16) + the key

# Argon2id limits accepted in a store header. The floor is libsodium's MODERATE; the cap keeps a
# tampered header from making an unlock take minutes or exhaust memory.
KDF_OPSLIMIT_DEFAULT = argon2id.OPSLIMIT_MODERATE
KDF_MEMLIMIT_DEFAULT = argon2id.MEMLIMIT_MODERATE
KDF_OPSLIMIT_RANGE = (argon2id.OPSLIMIT_MODERATE, 20)
KDF_MEMLIMIT_RANGE = (argon2id.MEMLIMIT_MODERATE, 4 * 1024**3)

# Attachments: secretstream chunks of 64 KiB plaintext; every chunk but the last is full.
STREAM_CHUNK = 64 * 1024
STREAM_HEADER_BYTES = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES  # 24
STREAM_ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES  # 17
_TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL


def random_bytes(n: int) -> bytes:
    return bytes(nacl.utils.random(n))


def labelled(label: bytes, data: bytes) -> bytes:
    """``label || 0x00 || data``: what every labelled operation actually processes."""
    return label + b"\x00" + data


# --- hashing ---------------------------------------------------------------------------------


def hash32(label: bytes, data: bytes) -> bytes:
    """BLAKE2b-256 of ``label || 0x00 || data``."""
    return hashlib.blake2b(labelled(label, data), digest_size=32).digest()


class StreamHash:
    """BLAKE2b-256 of ``label || 0x00 || data`` for data that arrives in pieces."""

    def __init__(self, label: bytes) -> None:
        self._h = hashlib.blake2b(digest_size=32)
        self._h.update(labelled(label, b""))

    def update(self, data: bytes) -> None:
        self._h.update(data)

    def digest(self) -> bytes:
        return self._h.digest()


def commitment(content_key: bytes, plaintext: bytes) -> bytes:
    """Key-committing hash: keyed BLAKE2b-256 (key = the content key) of the labelled plaintext.

    Signed in the entry header, it binds one ciphertext to one key and one plaintext.
    """
    return hashlib.blake2b(
        labelled(LABEL_COMMIT, plaintext), digest_size=32, key=content_key
    ).digest()


def derive_key(master: bytes, label: bytes) -> bytes:
    """A subkey for one purpose: keyed BLAKE2b-256 of the label under the master key."""
    return hashlib.blake2b(labelled(label, b""), digest_size=32, key=master).digest()


def equal(a: bytes, b: bytes) -> bool:
    return bool(sodium.sodium_memcmp(a, b)) if len(a) == len(b) else False


# --- AEAD ------------------------------------------------------------------------------------


def aead_encrypt(key: bytes, nonce: bytes, plaintext: bytes, associated: bytes) -> bytes:
    return bytes(
        sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, associated, nonce, key)
    )


def aead_decrypt(
    key: bytes, nonce: bytes, ciphertext: bytes, associated: bytes, *, what: str
) -> bytes:
    if len(ciphertext) < AEAD_TAG_BYTES:  # the binding would fail with a bare ValueError
        raise DecryptionFailed(f"{what} cannot be decrypted: it is cut short")
    try:
        return bytes(
            sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, associated, nonce, key)
        )
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, TypeError) as exc:
        raise DecryptionFailed(f"{what} cannot be decrypted: wrong key or altered bytes") from exc


def seal_with_key(
    key: bytes, plaintext: bytes, label: bytes, context: bytes = b""
) -> tuple[bytes, bytes]:
    """Encrypt under a symmetric key with a fresh nonce; returns ``(nonce, ciphertext)``. The
    associated data is ``label || 0x00 || context``: the ciphertext opens only for both."""
    nonce = random_bytes(NONCE_BYTES)
    return nonce, aead_encrypt(key, nonce, plaintext, labelled(label, context))


def open_with_key(
    key: bytes, nonce: bytes, ciphertext: bytes, label: bytes, *, what: str, context: bytes = b""
) -> bytes:
    return aead_decrypt(key, nonce, ciphertext, labelled(label, context), what=what)


# --- signatures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningPair:
    seed: bytes = b""

    @classmethod
    def generate(cls) -> SigningPair:
        return cls(bytes(SigningKey.generate()))

    @functools.cached_property
    def _key(self) -> SigningKey:  # deriving the key pair from the seed is not free
        return SigningKey(self.seed)

    @functools.cached_property
    def public(self) -> bytes:
        return bytes(self._key.verify_key)

    def sign(self, label: bytes, message: bytes) -> bytes:
        return bytes(self._key.sign(labelled(label, message)).signature)

    def open_box_proof(
        self, box_public: bytes, label: bytes, message: bytes, proof: bytes, *, what: str
    ) -> None:
        """Raises ``SignatureInvalid`` unless ``proof`` (``BoxPair.prove``, made for this key)
        opens, with this key's X25519 form (libsodium's ``crypto_sign_ed25519_sk_to_curve25519``)
        and ``box_public``, to the labelled hash of ``message``: then whoever made it holds the
        secret of ``box_public``. A box key of low order, whose shared secret anyone knows, is
        refused by libsodium before anything is opened."""
        if len(proof) != BOX_PROOF_BYTES:
            raise SignatureInvalid(f"the proof of {what} has the wrong length")
        try:
            box = Box(self._key.to_curve25519_private_key(), PublicKey(box_public))
            opened = bytes(box.decrypt(proof))
        except (nacl.exceptions.CryptoError, TypeError) as exc:
            raise SignatureInvalid(f"the proof of {what} does not open for this server") from exc
        if not equal(opened, hash32(label, message)):
            raise SignatureInvalid(f"the proof of {what} was made for another claim")

    def __repr__(self) -> str:  # never print the seed
        return "SigningPair(<secret>)"


def verify(public: bytes, label: bytes, message: bytes, signature: bytes, *, what: str) -> None:
    try:
        VerifyKey(public).verify(labelled(label, message), signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, TypeError) as exc:
        raise SignatureInvalid(f"the signature on {what} does not verify") from exc


# --- key wrapping for readers (sealed boxes) -------------------------------------------------

_X25519_P = 2**255 - 19


def is_canonical_box_key(key: bytes) -> bool:
    """Whether an X25519 public key is in its one spelling: a u-coordinate below p, as
    libsodium always writes one. X25519 ignores bit 255 and reduces mod p, so a key with that
    bit set (or u + p) is another spelling of the same key."""
    return len(key) == KEY_BYTES and int.from_bytes(key, "little") < _X25519_P


@dataclass(frozen=True)
class BoxPair:
    secret: bytes = b""

    @classmethod
    def generate(cls) -> BoxPair:
        return cls(bytes(PrivateKey.generate()))

    @functools.cached_property
    def _box(self) -> SealedBox[PrivateKey]:
        return SealedBox(PrivateKey(self.secret))

    @functools.cached_property
    def public(self) -> bytes:
        return bytes(PrivateKey(self.secret).public_key)

    def unwrap(self, wrapped: bytes, *, what: str) -> bytes:
        try:
            key = bytes(self._box.decrypt(wrapped))
        except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, TypeError) as exc:
            raise DecryptionFailed(f"the key of {what} cannot be unwrapped") from exc
        if len(key) != KEY_BYTES:
            raise DecryptionFailed(f"the key of {what} has the wrong length")
        return key

    def open_sealed(self, sealed: bytes, *, what: str) -> bytes:
        """What ``seal_for`` sealed to this key (a key bundle)."""
        try:
            return bytes(self._box.decrypt(sealed))
        except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, TypeError) as exc:
            raise DecryptionFailed(f"{what} does not open with this store's box key") from exc

    def prove(self, server_key: bytes, label: bytes, message: bytes) -> bytes:
        """Proof, for the server whose Ed25519 receipt key is ``server_key``, that whoever made
        it holds this X25519 secret: ``nonce || crypto_box(hash32(label, message))``, a box with
        a random nonce from this secret to the server's key in X25519 form (libsodium's
        ``crypto_sign_ed25519_pk_to_curve25519``: the receipt key the device already checked,
        so no other server key is needed). A box authenticates both ends: only this secret's
        holder, or the server, can make one that opens with the server's secret and this public
        key (``SigningPair.open_box_proof``). libsodium's complete construction, never a
        signature assembled from curve arithmetic; the price is that only the server can check
        it (decision 52)."""
        try:
            box = Box(PrivateKey(self.secret), VerifyKey(server_key).to_curve25519_public_key())
        except (nacl.exceptions.CryptoError, TypeError) as exc:
            # not an Ed25519 point, or one whose X25519 form is of low order
            raise MalformedData("the server's key cannot receive a proof of the box key") from exc
        return bytes(box.encrypt(hash32(label, message)))

    def __repr__(self) -> str:
        return "BoxPair(<secret>)"


def unwrap_any(keys: Sequence[BoxPair], wrapped: bytes, *, what: str) -> tuple[BoxPair, bytes]:
    """The key of ``keys`` a content key is sealed for, and the content key. A sealed box does
    not say whose it is, so each is tried in turn, the likeliest first (the organisation's
    read keys, newest first: as many as its rotations); the last one's failure is raised."""
    for key in keys[:-1]:
        try:
            return key, key.unwrap(wrapped, what=what)
        except DecryptionFailed:
            continue
    return keys[-1], keys[-1].unwrap(wrapped, what=what)


def seal_for(reader_public: bytes, data: bytes) -> bytes:
    """Seal ``data`` (a key bundle's secrets) for one reader's X25519 public key."""
    return wrap_key(reader_public, data)


def wrap_key(reader_public: bytes, key: bytes) -> bytes:
    """Seal a content key for one reader's X25519 public key."""
    try:
        return bytes(SealedBox(PublicKey(reader_public)).encrypt(key))
    except (nacl.exceptions.CryptoError, nacl.exceptions.RuntimeError, ValueError) as exc:
        # e.g. a low-order point: libsodium refuses to seal for it
        raise MalformedData("the reader's public key cannot be used to wrap a key") from exc


# --- passphrases -----------------------------------------------------------------------------


def check_kdf_params(opslimit: int, memlimit: int) -> None:
    lo_ops, hi_ops = KDF_OPSLIMIT_RANGE
    lo_mem, hi_mem = KDF_MEMLIMIT_RANGE
    if not (lo_ops <= opslimit <= hi_ops and lo_mem <= memlimit <= hi_mem):
        raise KdfParamsRefused(
            f"the store asks for Argon2id opslimit={opslimit}, memlimit={memlimit}, outside the "
            f"accepted range (opslimit {lo_ops}..{hi_ops}, memlimit {lo_mem}..{hi_mem} bytes)"
        )


def derive_from_passphrase(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    """Argon2id (v1.3) key-encryption key; limits are checked before any work is done.

    The passphrase is NFC-normalised first: the same words typed on another keyboard or
    operating system may arrive composed differently (é as one code point or as e + accent).
    """
    check_kdf_params(opslimit, memlimit)
    if len(salt) != SALT_BYTES:
        raise MalformedData("the key-derivation salt has the wrong length")
    return bytes(
        argon2id.kdf(
            KEY_BYTES,
            unicodedata.normalize("NFC", passphrase).encode("utf-8"),
            salt,
            opslimit=opslimit,
            memlimit=memlimit,
        )
    )


# --- attachments: secretstream ---------------------------------------------------------------


def stream_encrypt(key: bytes, source: BinaryIO) -> Iterator[bytes]:
    """Yield the secretstream header, then one ciphertext chunk per 64 KiB of ``source``.

    Reads one chunk ahead so the last chunk (possibly empty) carries the FINAL tag: a stream
    cut at any chunk boundary is then detectably truncated.
    """
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    yield bytes(sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key))
    chunk = source.read(STREAM_CHUNK)
    while True:
        following = source.read(STREAM_CHUNK)
        tag = _TAG_FINAL if not following else _TAG_MESSAGE
        yield bytes(
            sodium.crypto_secretstream_xchacha20poly1305_push(state, chunk, LABEL_BLOB, tag)
        )
        if not following:
            return
        chunk = following


def stream_decrypt(key: bytes, source: BinaryIO, *, what: str) -> Iterator[bytes]:
    """Yield the plaintext chunks of a stream written by ``stream_encrypt``.

    Raises ``DecryptionFailed`` on any altered, reordered, truncated or extended chunk; a caller
    that writes plaintext out must discard it unless the iterator finishes.
    """
    header = source.read(STREAM_HEADER_BYTES)
    if len(header) != STREAM_HEADER_BYTES:
        raise DecryptionFailed(f"{what} is truncated")
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    try:
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header, key)
        while True:
            cipher = source.read(STREAM_CHUNK + STREAM_ABYTES)
            if not cipher:
                raise DecryptionFailed(f"{what} is truncated")
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(
                state, cipher, LABEL_BLOB
            )
            if tag == _TAG_FINAL:
                if source.read(1):
                    raise DecryptionFailed(f"{what} has bytes after its end")
                yield bytes(plain)
                return
            if len(cipher) != STREAM_CHUNK + STREAM_ABYTES:
                raise DecryptionFailed(f"{what} is truncated")
            yield bytes(plain)
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, RuntimeError) as exc:
        raise DecryptionFailed(f"{what} cannot be decrypted: wrong key or altered bytes") from exc
