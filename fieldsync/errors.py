"""Every error fieldsync raises on purpose, in one tree.

Kept whole: the tree is the contract between the CLI's exit codes, the server's HTTP statuses
and the client that turns one back into the other; it reads best in one place.

    FieldsyncError               exit 1    HTTP 500
    ├── InputError               exit 5    HTTP 422   what the person gave us is unusable
    │   ├── AnswersInvalid                            answers fail the form's rules
    │   ├── ImportFileError                           an import file cannot be read
    │   ├── AttachmentError                           a file to attach is missing or odd
    │   ├── PassphraseError                           missing, too short, or mismatched
    │   ├── OutputPathError                           cannot write a decrypted file there
    │   ├── SharesInvalid                             recovery shares that do not combine
    │   ├── InviteExpired                  HTTP 410   an invite past its expiry
    │   ├── TooLarge                       HTTP 413   a request body over its limit
    │   └── RequestCut                     HTTP 400   the client left mid-body (a dropped link)
    ├── WrongPassphrase          exit 3    HTTP 401
    ├── AccessDenied             exit 3    HTTP 403   not this organisation's, not enrolled
    │   └── DeviceRevoked        exit 9               the administrator revoked this device
    ├── NotFound                 exit 4    HTTP 404
    │   ├── StoreNotFound
    │   ├── RecordNotFound
    │   ├── AttachmentNotFound
    │   └── FormNotFound
    ├── StoreStateError          exit 7    HTTP 409
    │   ├── StoreExists
    │   ├── StoreWiped
    │   ├── UnsupportedFormat                         written by a newer fieldsync
    │   ├── KdfParamsRefused                          Argon2id limits outside floor..cap
    │   ├── StoreBusy                                 another fieldsync holds the store
    │   ├── NotAdminStore                             a documenter's store, not an admin's
    │   ├── InviteUsed                                an invite already enrolled a device
    │   ├── ChainGap                                  a batch skips entries the server lacks
    │   ├── ServerBehind                              the server lacks what it gave receipts for
    │   ├── UploadBusy                                another request is appending to a blob
    │   ├── QuotaExceeded                  HTTP 507   a device holds all the server keeps for it
    │   ├── ChainFork                                 a batch contradicts stored entries
    │   ├── SchemaMismatch                            server database at another revision
    │   ├── DiskFull                                  no space left to write
    │   └── DiskError                                 the disk failed a write (an I/O error)
    ├── ServerError              exit 8    HTTP 502   the server failed or sent nonsense
    │   ├── ServerUnreachable                         no answer (timeouts, refused, dropped)
    │   ├── DatabaseUnreachable                       the server's own database did not answer
    │   ├── DatabaseDriverMissing                     its database's driver is not installed
    │   ├── ServerStorageFailed            HTTP 507   the server's disk is full or failing
    │   ├── ReceiptKeyMissing              HTTP 500   the receipt key in force is not in its data
    │   ├── BodyTooSlow                    HTTP 408   a request body arrived too slowly
    │   └── ServerBusy                     HTTP 503   the server reads no more bodies now
    ├── IntegrityError           exit 6    HTTP 400   bytes are not what they claim
    │   ├── MalformedData                             cannot be decoded (truncated, ...)
    │   ├── SignatureInvalid
    │   ├── DecryptionFailed                          wrong key or altered bytes
    │   ├── StoreCorrupted                            a file of the local store is damaged
    │   └── BatchInvalid                              a batch disagrees with its manifest
    └── Interrupted              exit 130
        └── ImportInterrupted                        an import stopped: what it saved, refused

The CLI is the one place that turns these into a line `error: <message>` (plus `hint: <hint>`)
and an exit code; the server will map them to HTTP statuses. Messages name objects (a record,
a file, a field), never key material or passphrases.
"""

from __future__ import annotations


class FieldsyncError(Exception):
    """Something went wrong."""

    exit_code = 1
    http_status = 500
    hint: str | None = None

    def __init__(
        self,
        message: str | None = None,
        *,
        hint: str | None = None,
        details: dict[str, int | str] | None = None,
    ) -> None:
        self.message = message or (self.__doc__ or "error").strip().splitlines()[0]
        if hint is not None:
            self.hint = hint
        self.details = details or {}  # machine-readable facts, e.g. the seq to resend from
        super().__init__(self.message)


# --- what the person gave us ---------------------------------------------------------------


class InputError(FieldsyncError):
    """The input is not usable."""

    exit_code = 5
    http_status = 422


class AnswersInvalid(InputError):
    """The answers do not fit the form."""

    def __init__(self, problems: list[str], *, form: str, hint: str | None = None) -> None:
        self.problems = problems
        listing = "; ".join(problems[:8])
        more = f" (and {len(problems) - 8} more)" if len(problems) > 8 else ""
        super().__init__(
            f"the answers do not fit the {form} form: {listing}{more}",
            hint=hint or "Nothing was saved. Correct the answers and try again.",
        )


class ImportFileError(InputError):
    """The import file cannot be read."""

    hint = "Nothing was saved from this file."


class AttachmentError(InputError):
    """A file to attach cannot be used."""

    hint = "Nothing was attached; the record is unchanged."


class PassphraseError(InputError):
    """The passphrase cannot be used."""


class OutputPathError(InputError):
    """The output path cannot be used."""


class SharesInvalid(InputError):
    """The recovery shares cannot be combined into the backup key."""

    hint = (
        "Nothing was created. Check each share word by word against its paper (its check "
        "code must match the one written beside it), then run 'fieldsync admin recover' again."
    )


class InviteExpired(InputError):
    """This invite has expired."""

    http_status = 410
    hint = "Ask your administrator for a new invite."


class TooLarge(InputError):
    """The request is too large."""

    http_status = 413


class RequestCut(InputError):
    """The connection ended before the request's body did: the link dropped; nothing is kept."""

    http_status = 400


# --- who you are ---------------------------------------------------------------------------


class WrongPassphrase(FieldsyncError):
    """The passphrase is wrong for this store."""

    exit_code = 3
    http_status = 401
    hint = "Nothing was changed. Check the passphrase (and keyboard layout) and try again."


class AccessDenied(FieldsyncError):
    """Not allowed."""

    exit_code = 3
    http_status = 403


class DeviceRevoked(AccessDenied):
    """This device has been revoked by the organisation's administrator."""

    # Its own code: a script must not mistake it for a wrong passphrase and ask again, nor
    # for a passing failure and retry forever.
    exit_code = 9
    hint = (
        "Nothing was lost on this device: what is queued stays in its encrypted store. "
        "Contact your organisation's administrator; do not keep retrying."
    )


# --- what is not there ---------------------------------------------------------------------


class NotFound(FieldsyncError):
    """Not found."""

    exit_code = 4
    http_status = 404


class StoreNotFound(NotFound):
    """There is no fieldsync store here."""

    hint = "Run 'fieldsync init' to create one, or pass --home to point at an existing one."


class RecordNotFound(NotFound):
    """No such record."""

    hint = "Run 'fieldsync list' to see the records in this store."


class AttachmentNotFound(NotFound):
    """No such attachment."""

    hint = "Run 'fieldsync show RECORD' to see its numbered attachments."


class FormNotFound(NotFound):
    """No such form."""

    hint = "Run 'fieldsync forms list' to see the forms this device knows."


# --- the state of the store ----------------------------------------------------------------


class StoreStateError(FieldsyncError):
    """The store is not in a state that allows this."""

    exit_code = 7
    http_status = 409


class StoreExists(StoreStateError):
    """A store already exists here."""

    hint = "Nothing was changed. Use another --home for a new store."


class StoreWiped(StoreStateError):
    """This store's keys have been destroyed; its contents can no longer be read."""


class UnsupportedFormat(StoreStateError):
    """This data was written by a newer version of fieldsync."""

    hint = "Nothing was changed. Upgrade fieldsync to read it."


class KdfParamsRefused(StoreStateError):
    """The store's key-derivation settings are outside the safe range."""

    hint = "The store header may have been tampered with. Nothing was unlocked."


class StoreBusy(StoreStateError):
    """Another fieldsync process is using this store."""

    hint = "Nothing was changed. Wait for it to finish and try again."


class NotAdminStore(StoreStateError):
    """This is a documenter's store, not an administrator's."""

    hint = "Point --home at the store 'fieldsync admin init' created."


class InviteUsed(StoreStateError):
    """This invite has already been used to enrol a device."""

    hint = "Ask your administrator for a new invite; each one enrols one device."


class ChainGap(StoreStateError):
    """The batch does not follow what the server has of this device."""


class ServerBehind(StoreStateError):
    """The server holds less of this device's record than its receipts said it had."""


class UploadBusy(StoreStateError):
    """Another request is appending to this blob right now."""

    hint = "Ask where the upload is in a moment; a request whose link dropped lets go of it."


class QuotaExceeded(StoreStateError):
    """The server holds as much for this device as its limits allow."""

    http_status = 507
    hint = (
        "Nothing was lost: it stays queued on this device. Tell your administrator, who can "
        "raise the server's limits (docs/deploy.md, 'Quotas and timeouts')."
    )


class ChainFork(StoreStateError):
    """The batch contradicts entries the server already holds."""

    hint = "Nothing was overwritten; the batch is kept for review. Tell your administrator."


class SchemaMismatch(StoreStateError):
    """The server's database is not at the schema revision this fieldsync runs on."""


class DiskFull(StoreStateError):
    """There is no space left on the disk."""

    hint = "Nothing from this command was saved; what was saved before is intact. Free space."


class DiskError(StoreStateError):
    """The disk failed a read or a write (an I/O error, not a full disk)."""

    hint = (
        "What was being saved at that moment was not saved; what was saved before is intact. "
        "Check the disk, then run 'fieldsync check'."
    )


# --- the server and the link to it ---------------------------------------------------------


class ServerError(FieldsyncError):
    """The server could not do what was asked."""

    exit_code = 8
    http_status = 502


class DatabaseUnreachable(ServerError):
    """The server's database did not answer."""

    hint = (
        "Nothing was changed. Check the database URL (--database-url or "
        "FIELDSYNC_DATABASE_URL), that the database server is running, and that this user may "
        "connect to it."
    )


class DatabaseDriverMissing(ServerError):
    """The server's database driver is not installed."""


class ServerStorageFailed(ServerError):
    """The server could not store what was sent: its disk is full or failing."""

    http_status = 507
    hint = "Nothing was lost; it stays on this device. Tell your administrator."


class ReceiptKeyMissing(ServerError):
    """The receipt key the organisation's log names in force is not in the server's data."""

    http_status = 500
    hint = (
        "Nothing was lost; it stays on this device. Tell your administrator: the server needs "
        "that key's file back, or a new receipt key (docs/deploy.md)."
    )


class BodyTooSlow(ServerError):
    """The request's body arrived too slowly: the server stopped reading it."""

    http_status = 408
    hint = (
        "Nothing was lost; it stays on this device. Send it again over a faster or steadier "
        "connection."
    )


class ServerBusy(ServerError):
    """The server is reading as many request bodies as it takes at once."""

    http_status = 503
    hint = "Nothing was lost or kept. Try again in a few seconds (a device does so by itself)."


class ServerUnreachable(ServerError):
    """The server could not be reached."""

    http_status = 504


# --- bytes that are not what they claim ----------------------------------------------------


class IntegrityError(FieldsyncError):
    """Data failed an integrity check."""

    exit_code = 6
    http_status = 400


class MalformedData(IntegrityError):
    """Data cannot be decoded."""


class SignatureInvalid(IntegrityError):
    """A signature does not verify."""


class DecryptionFailed(IntegrityError):
    """Data cannot be decrypted: the key is wrong or the bytes were altered."""


class StoreCorrupted(IntegrityError):
    """A file of the local store is damaged."""

    hint = "Run 'fieldsync check' to see what is intact, and restore the file from a backup."


class BatchInvalid(IntegrityError):
    """A batch does not hold what its signed manifest says."""


# --- the person stopped us -----------------------------------------------------------------


class Interrupted(FieldsyncError):
    """Interrupted."""

    exit_code = 130


class ImportInterrupted(Interrupted):
    """An import stopped by Ctrl-C: what it saved, and the rows it refused with their reasons."""

    def __init__(
        self, message: str, *, hint: str, refused: list[tuple[int, tuple[str, ...]]]
    ) -> None:
        super().__init__(message, hint=hint)
        self.refused = refused
