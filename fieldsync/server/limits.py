"""How much one device may make the server hold, and how long and how slowly a body may arrive
(docs/deploy.md, "Quotas and timeouts"). ``server run`` sets them; the defaults are safe."""

from __future__ import annotations

from dataclasses import dataclass

GIB, MIB, KIB = 1024**3, 1024**2, 1024
SLOW_LINK = 20 * KIB  # bytes/s: a poor but working mobile or satellite link still gets through


@dataclass(frozen=True)
class Limits:
    # uploads no batch names yet, counted at their declared size: what a device could still fill
    open_upload_bytes: int = 16 * GIB  # two of the largest blobs (blobs.MAX_BLOB)
    open_uploads: int = 16  # a device uploads one blob at a time; leftovers resume first
    # batches kept for review (forks, a revoked device's), per device
    quarantine_bytes: int = 256 * MIB
    quarantine_batches: int = 64
    upload_expiry_h: float = 48.0  # an upload no batch names, untouched this long, is deleted
    body_idle_s: float = 30.0  # a request body silent this long has lost its link
    # A body read before its signature is checked (enrolment, batches, every signed call but a
    # blob append) must be whole within this, or a byte sent every 29 s holds it for ever. The
    # largest, a batch of batch.MAX_BATCH_BYTES (16 MiB), takes 819 s at SLOW_LINK: 15 minutes.
    body_deadline_s: float = 900.0
    # A blob append's body (its headers' signature checked first, and what arrives is kept)
    # must average this many bytes/s once body_rate_grace_s has passed: a twentieth of
    # SLOW_LINK, so a slow device is not cut, and one that is resumes where it was cut.
    body_min_rate: float = SLOW_LINK / 20
    body_rate_grace_s: float = 60.0
    # Bodies being read at once, per server process, before their signature is checked: one
    # more is answered 503 at once. 32 batches of 16 MiB is the most this holds in memory.
    unauthenticated_bodies: int = 32

    @property
    def upload_expiry_ms(self) -> int:
        return int(self.upload_expiry_h * 3_600_000)
