"""The organisation's log on the server: statements the admin key signed, kept one per seq
and served to every reader, who verifies them all (core/orglog.py).

The server follows the log itself before it keeps a statement, from the root its
``server.json`` names, so it holds only a log that every reader will follow. A second,
different statement at a seq it holds is refused as a fork and kept apart, and served with
the log: each reader checks whether the admin key really signed both, and if so stops
following at that seq and names the fork. The server never decides a fork's winner quietly.
"""

from __future__ import annotations

import functools

from sqlalchemy.exc import IntegrityError as RowConflict
from sqlmodel import Session, col, select

from fieldsync.core import crypto, orglog
from fieldsync.core.orglog import OrgState
from fieldsync.core.wire import OrgLogPage
from fieldsync.errors import AccessDenied, ChainFork, ChainGap, ReceiptKeyMissing, SignatureInvalid
from fieldsync.server.data import ServerData
from fieldsync.server.tables import OrgForkRow, OrgStatementRow


def root(server: ServerData) -> OrgState:
    return OrgState.root(
        server.org.admin_key, server.org.org_read_key, server.receipt_key.public.hex()
    )


def page(session: Session) -> OrgLogPage:
    statements = session.exec(select(OrgStatementRow.raw).order_by(col(OrgStatementRow.seq)))
    forks = session.exec(select(OrgForkRow.raw).order_by(col(OrgForkRow.seq), OrgForkRow.id))
    return OrgLogPage(tuple(statements.all()), tuple(forks.all()))


def followed(session: Session, server: ServerData) -> OrgState:
    """The log as the server holds it (the statement it kept first at each seq), followed from
    its root: whose requests it takes as the administrator's and a member's. A fork changes
    nothing here: a thief of the admin key who signs a rival succession after the real one
    gets no say on this server, and every reader is shown the fork."""
    held = page(session)
    return _follow(root(server), held.statements, ())


@functools.lru_cache(maxsize=8)
def _follow(
    start: OrgState, statements: tuple[bytes, ...], forks: tuple[bytes, ...], floor: int = 0
) -> OrgState:
    """Followed once per process for each log: every signed request asks for the admin key in
    force."""
    return orglog.follow(start, statements, forks=forks, floor=floor)


def admin_key(session: Session, server: ServerData) -> str:
    """The admin key in force: the root's, or the last succession's the log names."""
    return followed(session, server).admin_key


def receipt_key(session: Session, server: ServerData) -> crypto.SigningPair:
    """The receipt key in force: the first, or the last the log named (which this server
    held when it kept that statement)."""
    named = followed(session, server).server_key
    pair = server.receipt_pair(named)
    if pair is None:
        raise ReceiptKeyMissing(
            f"the receipt key the organisation's log names in force ({named[:16]}…) is not in "
            "the server's data folder; no receipt can be signed"
        )
    return pair


def next_receipt_key(session: Session, server: ServerData) -> crypto.SigningPair | None:
    """The newest receipt key this server holds that the log has not named yet."""
    state = followed(session, server)
    named = {state.server_key, *state.server_keys}
    unnamed = [k for k in server.receipt_keys() if k.public.hex() not in named]
    return unnamed[-1] if unnamed else None


def append(session: Session, server: ServerData, raw: bytes, now_ms: int) -> OrgLogPage:
    """Keep the next statement of the log (the same one again changes nothing); answers the
    log as it now stands. ``ChainFork`` for another statement at a seq held (kept as a fork
    if the key in force there signed it), ``ChainGap`` past the next seq, and the reason any
    other statement would not be followed."""
    statement = orglog.parse(raw)
    held = page(session)
    log = [orglog.parse(found) for found in held.statements]
    if statement.seq <= len(log):
        if log[statement.seq - 1].id == statement.id:
            return held
        return _fork(session, server, statement, log, now_ms)
    if statement.seq > len(log) + 1:
        raise ChainGap(
            f"the organisation's log holds {len(log)} statements; statement {statement.seq} "
            "cannot follow yet, nothing was kept"
        )
    # the server followed every statement it holds before any fork reached it (a fork stops
    # appends), so a fork below a succession it holds came from the retired key's other holder
    state = _follow(root(server), held.statements, held.forks, len(log))
    if state.blocked:
        at = min(fork.seq for fork in state.forks if not fork.superseded)
        raise ChainFork(
            f"the organisation's log forks at statement {at}: nothing after it is "
            "followed, nothing was kept",
            hint="Someone holding the admin key signed two statements at one seq: see "
            "docs/security.md, 'A stolen admin key'.",
        )
    orglog.apply(state, statement)  # what every reader would refuse, the server refuses
    if (
        statement.kind == orglog.RECEIPT_KEY
        and server.receipt_pair(str(statement.fields["server_key"])) is None
    ):
        raise AccessDenied(
            "this statement names a receipt key this server does not hold; nothing was kept",
            hint="Run 'fieldsync server new-receipt-key' on the server, then 'fieldsync admin "
            "rotate-receipt-key', which names the key the server offers.",
        )
    session.add(OrgStatementRow(seq=statement.seq, id=statement.id, raw=raw, received_ms=now_ms))
    try:
        session.commit()
    except RowConflict:  # another statement took this seq just now, perhaps at another process
        session.rollback()
        return append(session, server, raw, now_ms)
    return page(session)


def _fork(
    session: Session,
    server: ServerData,
    statement: orglog.Statement,
    log: list[orglog.Statement],
    now_ms: int,
) -> OrgLogPage:
    signer = root(server).admin_key_at(statement.seq, log)
    if statement.signer != signer:
        raise SignatureInvalid(
            f"statement {statement.seq} of the organisation's log is signed by a key that is "
            "not the organisation's admin key; nothing was kept"
        )
    if session.get(OrgForkRow, statement.id) is None:
        session.add(
            OrgForkRow(id=statement.id, seq=statement.seq, raw=statement.raw, received_ms=now_ms)
        )
        try:
            session.commit()
        except RowConflict:
            session.rollback()
    raise ChainFork(
        f"the organisation's log already holds another statement {statement.seq}; this one "
        "was refused and is kept as a fork, which every reader is shown",
        hint="Two statements signed at one seq mean two copies of the admin key are in use, "
        "or it was stolen: see docs/security.md, 'A stolen admin key'.",
    )
