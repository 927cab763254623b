"""Options every command shares, and getting a passphrase without ever echoing it."""

from __future__ import annotations

import contextlib
import getpass
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import platformdirs
import typer

from fieldsync.cli.render import invocation
from fieldsync.core.invite import checked_server_url
from fieldsync.errors import Interrupted, PassphraseError
from fieldsync.store.store import Store

MIN_PASSPHRASE = 8

Home = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="FIELDSYNC_HOME",
        help="Folder of the store [default: the platform's user data folder].",
        show_default=False,
    ),
]
PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="Read the passphrase from the first line of this file (for scripts).",
        dir_okay=False,
    ),
]


def _server_url(value: str | None) -> str | None:
    # checked as the command line is read: before any prompt or Argon2id unlock
    return None if value is None else checked_server_url(value)


ServerUrl = Annotated[str, typer.Option("--server", help="The server's URL.", callback=_server_url)]
RememberedServerUrl = Annotated[
    str | None,
    typer.Option(
        "--server",
        help="The server's URL [default: the one of the last invite].",
        callback=_server_url,
    ),
]


def _remember_json(value: bool) -> bool:
    # So the one error handler (main.FieldsyncGroup) prints a failure as a JSON document too.
    if value:
        invocation.json = True
    return value


Json = Annotated[
    bool,
    typer.Option(
        "--json",
        callback=_remember_json,
        help="Print exactly one JSON document (on failure too: error, hint, exit, kind).",
    ),
]
RecordArg = Annotated[str, typer.Argument(help="Record id (a unique prefix is enough).")]
DataDir = Annotated[Path, typer.Option("--data", help="The server's data folder.")]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="FIELDSYNC_DATABASE_URL",
        help="The server's database URL, instead of SQLite in the data folder.",
    ),
]
FromStart = Annotated[
    bool,
    typer.Option(
        "--from-start",
        help="Read the server's whole feed again, not from where the last pull stopped (after "
        "the server was restored from a backup); what is held already is not stored twice.",
    ),
]
BlobFolder = Annotated[
    Path | None,
    typer.Option(
        "--blobs",
        envvar="FIELDSYNC_BLOBS",
        help="The server's blob folder, instead of DATA/blobs (shared storage for several "
        "servers).",
        file_okay=False,
    ),
]


def home_dir(home: Path | None) -> Path:
    return home if home is not None else Path(platformdirs.user_data_dir("fieldsync", False))


def read_passphrase(
    passphrase_file: Path | None,
    *,
    prompt: str = "Passphrase",
    confirm: bool = False,
    env: str = "FIELDSYNC_PASSPHRASE",
) -> str:
    """From ``--passphrase-file``, then the environment variable, then a hidden prompt."""
    if passphrase_file is not None:
        try:
            lines = passphrase_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise PassphraseError(
                f"cannot read the passphrase file {str(passphrase_file)!r}"
            ) from exc
        passphrase = lines[0] if lines else ""
    elif os.environ.get(env):
        passphrase = os.environ[env]
    else:
        passphrase = _ask_hidden(prompt, confirm=confirm, env=env)
    if not passphrase:
        raise PassphraseError("the passphrase is empty")
    return passphrase


def _ask_hidden(prompt: str, *, confirm: bool, env: str) -> str:
    """The passphrase typed at the terminal, never echoed. Without a terminal getpass would
    warn (naming its own source file) and read the passphrase with echo on: that warning is
    made an error here and the person is told how to give it instead."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", getpass.GetPassWarning)
            answer: str = typer.prompt(
                prompt, hide_input=True, confirmation_prompt=confirm and "Repeat to confirm"
            )
            return answer
    except getpass.GetPassWarning:
        raise PassphraseError(
            "the passphrase cannot be asked for: there is no terminal to type it at",
            hint=f"Set {env}, or pass --passphrase-file FILE (its first line is read).",
        ) from None
    except typer.Abort as stopped:
        # click turns both Ctrl-C and Ctrl-D (end of input) into Abort; the one it caught is
        # kept as the context
        if isinstance(stopped.__context__, KeyboardInterrupt):
            raise Interrupted("interrupted at the passphrase prompt; nothing was changed") from None
        raise PassphraseError(
            "no passphrase was given",
            hint=f"Type it when asked, or set {env} or use --passphrase-file in scripts.",
        ) from None


def new_passphrase(passphrase_file: Path | None, *, env: str = "FIELDSYNC_PASSPHRASE") -> str:
    passphrase = read_passphrase(passphrase_file, prompt="New passphrase", confirm=True, env=env)
    if len(passphrase) < MIN_PASSPHRASE:
        raise PassphraseError(
            f"the passphrase is too short (at least {MIN_PASSPHRASE} characters)",
            hint="Nothing was created or changed. A few unrelated words make a strong passphrase.",
        )
    return passphrase


@contextlib.contextmanager
def unlocked(home: Path | None, passphrase_file: Path | None) -> Iterator[Store]:
    """Open and unlock the store for the length of one command."""
    folder = home_dir(home)
    Store.require(folder)  # say "no store here" before asking for a passphrase
    store = Store.open(folder, read_passphrase(passphrase_file))
    try:
        yield store
    finally:
        store.close()
