"""``--help`` for people: commands grouped in panels, placeholders that read as words
(``RECORD``, ``FIELD=VALUE``, ``FILE``), and one example under every command.

Help text is ours, so it may use markdown; record text never reaches it."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

# Where a placeholder made from the option's name would say less than this.
METAVARS = {
    "--set": "FIELD=VALUE",
    "--server": "URL",
    "--database-url": "URL",
    "--home": "DIR",
    "--data": "DIR",
    "--month": "YYYY-MM",
    "--from": "DATE",
    "--to": "DATE",
    "--search": "TEXT",
    "--take": "N",
    "--attachment": "N",
    "--format": "FORMAT",
}
_PATHS = {"file": "FILE", "dir": "DIR", "path": "PATH"}

# Panels of ``fieldsync --help`` and ``fieldsync admin --help``, by command path.
PANELS = {
    "init": "Store",
    "passwd": "Store",
    "wipe": "Store",
    "check": "Store",
    "demo": "Store",
    "new": "Records",
    "import": "Records",
    "edit": "Records",
    "attach": "Records",
    "list": "Records",
    "show": "Records",
    "history": "Records",
    "conflicts": "Records",
    "resolve": "Records",
    "forms": "Records",
    "enroll": "Sync",
    "push": "Sync",
    "pull": "Sync",
    "status": "Sync",
    "evidence-verify": "Reports",
    "admin": "Administration",
    "server": "Server",
    "admin init": "Organisation and devices",
    "admin invite": "Organisation and devices",
    "admin devices": "Organisation and devices",
    "admin revoke": "Organisation and devices",
    "admin rotate-read-key": "Organisation and devices",
    "admin rotate-admin-key": "Organisation and devices",
    "admin rotate-receipt-key": "Organisation and devices",
    "admin org-log": "Organisation and devices",
    "admin forms": "Organisation and devices",
    "admin forms import": "Organisation and devices",
    "admin backup": "Organisation and devices",
    "admin recover": "Organisation and devices",
    "admin import-file": "Sync",
    "admin verify": "Sync",
    "admin pull": "Sync",
    "admin push": "Sync",
    "admin edit": "Records",
    "admin report": "Reports",
    "admin export": "Reports",
    "admin evidence": "Reports",
}

EXAMPLES = {
    "init": "fieldsync init",
    "passwd": "fieldsync passwd",
    "wipe": "fieldsync wipe",
    "check": "fieldsync check --repair",
    "demo": "fieldsync demo --keep",
    "new": "fieldsync new incident --from-file answers.json",
    "import": "fieldsync import incident rows.csv",
    "edit": "fieldsync edit 01a2338f --set victims.total=3 --set victims.individuals[2].age=13",
    "attach": "fieldsync attach 01a2338f photo.jpg statement.pdf",
    "list": "fieldsync list --form incident --search idlib",
    "show": "fieldsync show 01a2338f --version 5d41402abc4b",
    "history": "fieldsync history 01a2338f",
    "conflicts": "fieldsync conflicts",
    "resolve": "fieldsync resolve 01a2338f --field victims.total --take 2",
    "forms list": "fieldsync forms list",
    "forms show": "fieldsync forms show incident",
    "enroll": "fieldsync enroll invite.txt",
    "push": "fieldsync push",
    "pull": "fieldsync pull",
    "status": "fieldsync status --json",
    "evidence-verify": "fieldsync evidence-verify package.json --org org.json",
    "admin init": "fieldsync admin init --public-out org.json",
    "admin invite": "fieldsync admin invite 'laptop 7' --server https://sync.example.org",
    "admin devices": "fieldsync admin devices",
    "admin revoke": "fieldsync admin revoke 'laptop 7'",
    "admin rotate-read-key": "fieldsync admin rotate-read-key",
    "admin rotate-admin-key": "fieldsync admin rotate-admin-key",
    "admin rotate-receipt-key": "fieldsync admin rotate-receipt-key",
    "admin org-log": "fieldsync admin org-log --out org-log.json",
    "admin forms import": "fieldsync admin forms import witness.xlsx --out witness.json",
    "admin forms": "fieldsync admin forms import witness.xlsx --out witness.json",
    "admin backup": "fieldsync admin backup --shares 5 --threshold 3",
    "admin recover": "fieldsync admin recover --server https://sync.example.org",
    "admin import-file": "fieldsync admin import-file carried.batches",
    "admin verify": "fieldsync admin verify --data /srv/fieldsync",
    "admin pull": "fieldsync admin pull",
    "admin push": "fieldsync admin push",
    "admin edit": "fieldsync admin edit 01a2338f --set perpetrator.party=unknown",
    "admin report": "fieldsync admin report --month 2024-03 --chart march.png",
    "admin export": "fieldsync admin export --format csv --out exports",
    "admin evidence": "fieldsync admin evidence 01a2338f --out 01a2338f.evidence",
    "server init": "fieldsync server init --data /srv/fieldsync --org org.json",
    "server migrate": "fieldsync server migrate --data /srv/fieldsync",
    "server new-receipt-key": "fieldsync server new-receipt-key --data /srv/fieldsync",
    "server run": "fieldsync server run --data /srv/fieldsync --host 0.0.0.0 --port 8443",
    "admin": "fieldsync admin report --month 2024-03",
    "forms": "fieldsync forms show incident",
    "server": "fieldsync server run --data /srv/fieldsync",
}


def placeholder(param: Any) -> str | None:
    """A word for what a parameter takes, or ``None`` to keep the one it was given."""
    if param.metavar is not None:
        return None
    if param.param_type_name == "argument":
        return str(param.name).upper() + ("..." if param.nargs != 1 else "")
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""  # a flag takes nothing: no "<bool>"
    name = param.opts[0]
    if name in METAVARS:
        return METAVARS[name]
    described = getattr(param, "type_descriptor", None)
    if described is not None and described.is_path:
        return _PATHS.get(described.path_type, "PATH")
    return str(name).lstrip("-").split("-")[-1].upper()  # --valid-days: DAYS


class _Argument(TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # its name (RECORD, FILES...) says it; no "<list[Path]>" beside it


class ReadableHelp:
    """Placeholders as words, and a usage line without typer's ``{record}`` braces."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for param in params:  # the help option is made here, so it is named here too
            word = placeholder(param)
            if word is not None:
                param.metavar = word
            if type(param) is TyperArgument:
                param.__class__ = _Argument  # typer takes no class for an argument
        return params

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces: list[str] = [self.options_metavar] if self.options_metavar else []  # type: ignore[attr-defined]
        for param in self.get_params(ctx):
            if param.param_type_name != "argument":
                continue
            pieces.append(param.metavar if param.required else f"[{param.metavar}]")
        if isinstance(self, TyperGroup):
            pieces.append(self.subcommand_metavar)
        return pieces


class Command(ReadableHelp, TyperCommand):
    pass


class Group(ReadableHelp, TyperGroup):
    pass


def example(path: str) -> str:
    return f"Example: `{EXAMPLES[path]}`"


def arrange(app: typer.Typer, prefix: str = "") -> None:
    """Give every command of ``app`` its panel, readable help and example (before typer
    builds the click commands, which it does when the app first runs)."""
    for command in app.registered_commands:
        named = command.name or getattr(command.callback, "__name__", "").replace("_", "-")
        path = prefix + named
        if command.cls in (None, TyperCommand):  # typer fills in its own class
            command.cls = Command
        command.rich_help_panel = command.rich_help_panel or PANELS.get(path)
        if path in EXAMPLES:
            command.epilog = example(path)
    for group in app.registered_groups:
        path = prefix + str(group.name)
        group.cls = Group
        group.rich_help_panel = PANELS.get(path)
        if path in EXAMPLES:
            group.epilog = example(path)
        if group.typer_instance is not None:
            arrange(group.typer_instance, path + " ")
