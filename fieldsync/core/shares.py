"""The backup key split into SLIP-39 shares (``shamir_mnemonic``), and put back together.

The splitting and combining are the ``shamir_mnemonic`` package's, never ours: one group
(group threshold 1 of 1) whose member threshold is K of N. What is ours is reading what a
person typed or copied, share by share, so that every failure names the share (by its position
among those given) and, where it can, the word:

    a word not in SLIP-39's list    share 2, word 5: 'acadmic' (did you mean 'academic'?)
    a checksum that fails           share 2: a word mistyped, left out, or two swapped
    shares of two backups           their first two words (the identifier) differ
    the same share twice            share 3 is share 1 again
    fewer than K                    3 shares are needed, 2 were given

K and N: 1 <= K <= N <= 16 (SLIP-39's limit). K = 1 with N > 1 is refused, as SLIP-39 itself
refuses it: each "share" would be the whole key, N copies that each open the backup alone.
1 of 1 is allowed, as SLIP-39 allows it: one paper copy of the key for an organisation of one
administrator, kept in a safe; anyone who finds it can open the backup.

A check code per share (two groups of four digits of a labelled BLAKE2b of its words) is shown
beside it when the backup is made and again when it is typed in, so a person compares eight
digits rather than 33 words to find the share copied wrong.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import shamir_mnemonic
from shamir_mnemonic import MnemonicError, Share
from shamir_mnemonic.wordlist import WORD_INDEX_MAP, WORDLIST

from fieldsync.core import crypto
from fieldsync.errors import InputError, SharesInvalid

MAX_SHARES = 16  # SLIP-39: a member index is 4 bits
KEY_BYTES = crypto.KEY_BYTES
SHARE_WORDS = 33  # 2 (identifier) + 2 (parameters) + 26 (256 bits) + 3 (checksum)
PREFIX_WORDS = 2  # the identifier: the same on every share of one backup
UNIQUE_PREFIX = 4  # SLIP-39's words differ in their first four letters
# The key is 256 random bits: stretching a passphrase (there is none) adds nothing.
ITERATION_EXPONENT = 0
EXTENDABLE = True  # SLIP-39's recommendation for new backups


def check_counts(threshold: int, count: int) -> None:
    """Refuse a K of N that SLIP-39 or good sense does not allow, before anything is made."""
    if not 1 <= count <= MAX_SHARES:
        raise InputError(
            f"a backup is split into 1 to {MAX_SHARES} shares, not {count}; nothing was made"
        )
    if not 1 <= threshold <= count:
        raise InputError(
            f"the threshold must be between 1 and the number of shares ({count}), not "
            f"{threshold}; nothing was made"
        )
    if threshold == 1 and count > 1:
        raise InputError(
            f"a threshold of 1 with {count} shares would make {count} copies of the backup "
            "key, each of which opens the backup alone; nothing was made",
            hint="Use --threshold 2 or more (e.g. --shares 5 --threshold 3), or --shares 1 "
            "--threshold 1 for a single copy.",
        )


def split(key: bytes, threshold: int, count: int) -> list[str]:
    """``count`` shares of ``key``, any ``threshold`` of which give it back."""
    check_counts(threshold, count)
    if len(key) != KEY_BYTES:
        raise ValueError("the backup key has the wrong length")
    groups: Any = shamir_mnemonic.generate_mnemonics(
        1,
        [(threshold, count)],
        key,
        b"",
        extendable=EXTENDABLE,
        iteration_exponent=ITERATION_EXPONENT,
    )
    return [str(share) for share in groups[0]]


def check_code(share: str) -> str:
    """Eight digits a person compares by hand: ``1234-5678``."""
    digest = crypto.hash32(crypto.LABEL_SHARE_CHECK, " ".join(normalised(share)).encode())
    digits = f"{int.from_bytes(digest[:8], 'big') % 10**8:08d}"
    return f"{digits[:4]}-{digits[4:]}"


def normalised(share: str) -> list[str]:
    """The words as typed, lower case; a word may be given by its first four letters or more
    (SLIP-39's words differ in those), and is then written out in full."""
    return [_full_word(word) for word in share.lower().split()]


def _full_word(word: str) -> str:
    if word in WORD_INDEX_MAP or len(word) < UNIQUE_PREFIX:
        return word
    starting = [w for w in WORDLIST if w.startswith(word[:UNIQUE_PREFIX])]
    return starting[0] if len(starting) == 1 and starting[0].startswith(word) else word


@dataclass(frozen=True)
class Read:
    """One share as given: its position (from 1) among those given, its words, and what
    SLIP-39 reads in it."""

    position: int
    words: tuple[str, ...]
    share: Share

    @property
    def text(self) -> str:
        return " ".join(self.words)


def combine(given: list[str]) -> bytes:
    """The backup key the shares make; ``SharesInvalid`` naming the share that is wrong."""
    shares = [read(n, text) for n, text in enumerate(given, 1) if text.strip()]
    if not shares:
        raise SharesInvalid("no shares were given")
    first = shares[0]
    for later in shares[1:]:
        _same_backup(first, later)
        for earlier in shares[: later.position - 1]:
            if earlier.share.index == later.share.index:
                again = "the same as" if earlier.words == later.words else "another copy of"
                raise SharesInvalid(
                    f"share {later.position} is {again} share {earlier.position}: each share "
                    "counts once"
                )
    needed = first.share.member_threshold
    if len(shares) < needed:
        raise SharesInvalid(
            f"{needed} shares are needed, {len(shares)} "
            f"{'was' if len(shares) == 1 else 'were'} given",
            hint="Nothing was created. Ask more of the custodians for their shares.",
        )
    key = _combined(shares[:needed])
    if len(shares) > needed and _combined(shares[-needed:]) != key:
        raise SharesInvalid(
            "the shares given do not all make the same key: one of them was altered or "
            "copied wrong with a valid checksum"
        )
    return key


def read(position: int, text: str, *, hidden: bool = False) -> Read:
    """One share, checked on its own: its words, its length, its checksum. ``hidden``: it was
    typed at a hidden prompt, so an error names a word by its number only, never its text."""
    words = tuple(normalised(text))
    for n, word in enumerate(words, 1):
        if word not in WORD_INDEX_MAP:
            if hidden:
                raise SharesInvalid(f"share {position}, word {n} is not a word of a share")
            guess = difflib.get_close_matches(word, WORDLIST, n=3, cutoff=0.6)
            meant = f" (did you mean {' or '.join(repr(g) for g in guess)}?)" if guess else ""
            raise SharesInvalid(
                f"share {position}, word {n}: {word!r} is not a word of a share{meant}"
            )
    if len(words) != SHARE_WORDS:
        raise SharesInvalid(
            f"share {position} has {len(words)} words; a share of a fieldsync backup has "
            f"{SHARE_WORDS}: a word is missing or one too many was copied"
        )
    try:
        share = Share.from_mnemonic(" ".join(words))
    except MnemonicError as exc:
        raise SharesInvalid(
            f"share {position} does not pass its checksum: a word is mistyped, left out, or "
            f"two are swapped (its check code is {check_code(text)}; compare it with the one "
            "written beside the share)"
        ) from exc
    if share.group_count != 1 or share.group_threshold != 1 or len(share.value) != KEY_BYTES:
        raise SharesInvalid(f"share {position} is a SLIP-39 share, but not of a fieldsync backup")
    return Read(position, words, share)


def _same_backup(first: Read, later: Read) -> None:
    a, b = first.share, later.share
    if a.common_parameters() != b.common_parameters() or a.member_threshold != b.member_threshold:
        shown = " ".join(first.words[:PREFIX_WORDS]), " ".join(later.words[:PREFIX_WORDS])
        raise SharesInvalid(
            f"share {later.position} is of another backup than share {first.position} (a "
            f"backup's shares all begin with the same two words: {shown[0]!r} and "
            f"{shown[1]!r} differ)",
            hint="Nothing was created. Give only the shares of the newest backup.",
        )


def _combined(shares: list[Read]) -> bytes:
    try:
        key: Any = shamir_mnemonic.combine_mnemonics([s.text for s in shares], b"")
    except MnemonicError as exc:
        raise SharesInvalid(
            "the shares do not combine: they are of two backups that happen to share an "
            "identifier, or one was altered"
        ) from exc
    return bytes(key)
