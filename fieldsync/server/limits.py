"""How much one device may make the server hold, and how long a body may go silent
(docs/deploy.md, "Quotas and timeouts"). ``server run`` sets them; the defaults are safe."""

from __future__ import annotations

from dataclasses import dataclass

GIB, MIB = 1024**3, 1024**2


@dataclass(frozen=True)
class Limits:
    # unfinished uploads, counted at their declared size: what a device could still fill
    open_upload_bytes: int = 16 * GIB  # two of the largest blobs (blobs.MAX_BLOB)
    open_uploads: int = 16  # a device uploads one blob at a time; leftovers resume first
    # batches kept for review (forks, a revoked device's), per device
    quarantine_bytes: int = 256 * MIB
    quarantine_batches: int = 64
    upload_expiry_h: float = 48.0  # a partial upload not appended to for this long is deleted
    body_idle_s: float = 30.0  # a request body silent this long has lost its link

    @property
    def upload_expiry_ms(self) -> int:
        return int(self.upload_expiry_h * 3_600_000)
