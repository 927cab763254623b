"""The ``fieldsync`` command: one typer app, one place where errors become messages."""

from __future__ import annotations

import errno
import os
import sys
import traceback
from typing import Annotated, Any

import typer

from fieldsync import __version__
from fieldsync.cli import (
    admin_cmds,
    backup_cmds,
    conflict_cmds,
    demo_cmds,
    evidence_cmds,
    export_cmds,
    form_import_cmds,
    forms_cmds,
    org_cmds,
    read_cmds,
    record_cmds,
    report_cmds,
    server_cmds,
    store_cmds,
    sync_cmds,
)
from fieldsync.cli.help import Group, arrange, example
from fieldsync.cli.render import emit_json, err, invocation, labelled
from fieldsync.errors import DiskError, DiskFull, FieldsyncError, Interrupted


class FieldsyncGroup(Group):
    """Runs every command inside the one error handler of the CLI.

    Expected failures print ``error: ...`` and ``hint: ...`` on stderr and exit with their code.
    Nothing prints a traceback unless ``--debug`` (or FIELDSYNC_DEBUG=1) is given, and none ever
    shows local variables: a passphrase could be among them.
    """

    def invoke(self, ctx: Any) -> Any:
        invocation.reset()  # nothing left from an earlier run in this process (tests)
        # before parsing, so that a usage error of a --json command is a JSON document too
        # (the option's own callback runs only once the command line has parsed)
        invocation.json = "--json" in [*getattr(ctx, "protected_args", []), *ctx.args]
        try:
            return super().invoke(ctx)
        except FieldsyncError as exc:
            _report(exc)
            raise typer.Exit(exc.exit_code) from None
        except (KeyboardInterrupt, typer.Abort):
            _report(Interrupted("interrupted; what was being saved at that moment was not saved"))
            raise typer.Exit(Interrupted.exit_code) from None
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                failure: FieldsyncError = DiskFull(f"there is no space left on the disk{where}")
            elif exc.errno == errno.EFBIG:
                failure = DiskFull(f"a file grew past this system's file size limit{where}")
            elif exc.errno == errno.EIO:
                failure = DiskError(f"the disk failed a read or a write{where}")
            else:
                failure = FieldsyncError(f"the system refused an operation: {exc.strerror}{where}")
            _report(failure, exc)
            raise typer.Exit(failure.exit_code) from None
        except Exception as exc:
            if _is_cli_control(exc):  # usage errors and exits belong to typer
                _report_usage(exc)
                raise
            _report(
                FieldsyncError(
                    f"internal error ({type(exc).__name__}); nothing more was saved",
                    hint="Please report this; run again with --debug to see where it happened.",
                ),
                exc,
            )
            raise typer.Exit(1) from None


def _is_cli_control(exc: Exception) -> bool:
    return isinstance(exc, typer.Exit) or type(exc).__module__.startswith(("typer", "click"))


def _report_usage(exc: Exception) -> None:
    """A usage error as a JSON document too (typer prints its own text on stderr). Known by
    click's method, not its class: typer may carry its own copy of click."""
    format_message = getattr(exc, "format_message", None)
    if callable(format_message):
        code = getattr(exc, "exit_code", 2)
        where = getattr(getattr(exc, "ctx", None), "command_path", "fieldsync")
        hint = f"Run '{where} --help' to see what it takes."
        _report_json(format_message(), hint, code, "UsageError", {})


def _debug() -> bool:
    return os.environ.get("FIELDSYNC_DEBUG") == "1"


def _report(error: FieldsyncError, cause: BaseException | None = None) -> None:
    if _debug():
        traceback.print_exception(cause or error, file=sys.stderr)
    err.print(labelled("error:", error.message, "bold red"))
    if error.hint:
        err.print(labelled("hint:", error.hint, "cyan"))
    _report_json(error.message, error.hint, error.exit_code, _kind(error, cause), error.details)


def _kind(error: FieldsyncError, cause: BaseException | None) -> str:
    """The error's class name; an OS or internal failure wrapped in the base class says so."""
    if type(error) is FieldsyncError and cause is not None:
        return "OSError" if isinstance(cause, OSError) else "InternalError"
    return type(error).__name__


def _report_json(
    message: str, hint: str | None, code: int, kind: str, details: dict[str, int | str]
) -> None:
    """Under ``--json``, the failure as stdout's one document, for scripts (the lines on stderr
    stay for people). A command that printed its document before failing (``admin verify``
    found problems) keeps that one: its exit code says it failed."""
    if not invocation.json or invocation.emitted:
        return
    document: dict[str, object] = {"error": message, "hint": hint, "exit": code, "kind": kind}
    if details:
        document["details"] = details
    emit_json(document)


app = typer.Typer(
    cls=FieldsyncGroup,
    name="fieldsync",
    help="Record testimony and incidents offline, encrypted; deliver them signed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",  # help text is ours; record text never passes through it
    epilog=example("new"),
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fieldsync {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show a traceback (never local variables) on errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """fieldsync: secure offline field collection for human-rights documentation."""
    if debug:
        os.environ["FIELDSYNC_DEBUG"] = "1"


store_cmds.register(app)
forms_cmds.register(app)
record_cmds.register(app)
read_cmds.register(app)
demo_cmds.register(app)
admin_cmds.register(app)
server_cmds.register(app)
sync_cmds.register(app)
conflict_cmds.register(app)
report_cmds.register(app)
export_cmds.register(app)
evidence_cmds.register(app)
org_cmds.register(app)
backup_cmds.register(app)
form_import_cmds.register(app)
arrange(app)


def main() -> None:
    app(prog_name="fieldsync")  # also under "python -m fieldsync": help and completion agree
