"""The `photo-relay` command: serve, device, person, destination, status, import, retry, ....

Commands other than `serve` work on the data folder directly (SQLite allows it while the
service runs), so a device added or revoked here takes effect at once. They find the data
folder as `serve` does (app/config.py) and never create one: a folder that is not there
is an error that names it and says how to point elsewhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import click
from pydantic import ValidationError

from app import log_redaction
from app.config import Settings, data_dir_pointer, record_data_dir
from app.errors import PhotoRelayError
from app.folder_lock import FolderLock
from app.store.db import Database
from app.store.people import DEFAULT_PERSON, People
from app.store.state import State
from app.tokens import ensure_admin_token, hash_token, new_token

EARLIER_DATA_DIR = "photo-relay-data"
DATA_DIR_ORIGINS = {
    "command line": "given with --data-dir",
    "environment": "named by PHOTO_RELAY_DATA_DIR",
    ".env file": "named by PHOTO_RELAY_DATA_DIR in the .env file here",
    "recorded by serve": "the one `photo-relay serve` last ran with",
    "default": "the default location",
}

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"PHOTO_RELAY_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        where = Settings.find_settings_file(overrides.get("data_dir"))
        raise click.ClickException(
            f"The configuration is not valid: {problems}. Settings come from the command "
            f"line, PHOTO_RELAY_ variables (the environment, a .env file here) and {where}."
        ) from None


def data_dir_option(command: F) -> F:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Data folder (default: $PHOTO_RELAY_DATA_DIR, else the one `serve` last ran "
        "with, else ~/.local/share/photo-relay; `photo-relay config` shows which).",
    )(command)


def existing_data(data_dir: Path | None) -> Settings:
    """The settings, for a command that needs the service's data folder to be there already.

    Only `serve` makes the folder: any other command making one would leave the person
    with a second, empty setup (a token the service refuses, a check of the wrong thing).
    """
    settings = load_settings(data_dir=data_dir)
    if not settings.data_dir.is_dir():
        folder = settings.data_dir.resolve()
        origin = DATA_DIR_ORIGINS.get(settings.origin_of("data_dir"), "")
        raise click.ClickException(
            f"There is no photo-relay data folder at {folder} ({origin}). Start the service "
            "once with `photo-relay serve` (it makes the folder and remembers it), or point "
            "to your data folder with --data-dir FOLDER or PHOTO_RELAY_DATA_DIR=FOLDER."
        )
    return settings


def friendly_errors(command: F) -> F:
    """Show our errors as one plain line instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except PhotoRelayError as exc:
            raise click.ClickException(exc.message) from None

    return wrapper  # type: ignore[return-value]


def note_service_differences(settings: Settings) -> None:
    """Say so when the running service was given settings this command does not have."""
    from app.cli.running_service import differences

    for line in differences(settings):
        click.echo(f"Note: {line}", err=True)


def open_state(data_dir: Path | None) -> tuple[Settings, State]:
    settings = existing_data(data_dir)
    return settings, State(Database(settings.database_path))


@click.group()
@click.version_option(package_name="photo-relay")
def main() -> None:
    """photo-relay: gets your iPhone's photos safely into your own NextCloud."""
    log_redaction.install()  # before any command logs: no secret in any record


@main.command()
@data_dir_option
@click.option("--host", help="Address to listen on (default 127.0.0.1; 0.0.0.0 for the LAN).")
@click.option("--port", type=int, help="Port to listen on (default 8000).")
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0.1),
    envvar="PHOTO_RELAY_HEADER_TIMEOUT_SECONDS",
    hidden=True,  # for tests and odd networks; docs/RELIABILITY.md
)
@friendly_errors
def serve(
    data_dir: Path | None, host: str | None, port: int | None, header_timeout: float | None
) -> None:
    """Start the service (it restarts by itself when a command changes its settings file)."""
    from app.cli.serving import restart, run_server

    def read_settings() -> Settings:
        return load_settings(data_dir=data_dir, host=host, port=port)

    settings = read_settings()
    if earlier := earlier_data_dir(settings):
        data_dir = earlier
        settings = read_settings()
        click.echo(
            f"Using the data folder an earlier version kept here, {earlier}; from now on "
            "every command finds it from any folder."
        )
    # Before any start-up work: a second service on this folder must change nothing.
    lock = FolderLock.take(settings.data_dir)
    try:
        if record_data_dir(settings.data_dir) is None:
            click.echo(
                f"Could not record the data folder in {data_dir_pointer()}; other commands "
                "need --data-dir or PHOTO_RELAY_DATA_DIR to find it.",
                err=True,
            )
        again = run_server(settings, header_timeout, read_settings)
    finally:
        lock.release()
    if again:
        restart()


def earlier_data_dir(settings: Settings) -> Path | None:
    """./photo-relay-data, where versions before the fixed default kept everything, when
    this serve would otherwise start afresh in the default folder beside it."""
    earlier = Path(EARLIER_DATA_DIR).resolve()
    if settings.origin_of("data_dir") != "default" or settings.database_path.exists():
        return None
    return earlier if (earlier / "photo-relay.db").exists() else None


@main.group()
def device() -> None:
    """Add, list and revoke the devices allowed to upload."""


@device.command("add")
@click.argument("name")
@click.option("--person", help="Whose device it is (see `person list`; default: the first).")
@data_dir_option
@friendly_errors
def device_add(name: str, person: str | None, data_dir: Path | None) -> None:
    """Create a device and print its token (shown only this once)."""
    if not name.strip() or not name.isprintable():
        raise click.BadParameter(
            "give the device a visible name, e.g. my-iphone", param_hint="NAME"
        )
    _, state = open_state(data_dir)
    owner = People(state.db).person_id(person) if person else DEFAULT_PERSON
    token = new_token("prd")
    state.add_device(name.strip(), hash_token(token), person_id=owner)
    click.echo(token)  # alone on stdout, so scripts can capture it
    click.echo(
        f"Device {name!r} added. Put this token in the Shortcut; it is not shown again.",
        err=True,
    )


@main.group()
def person() -> None:
    """Add and list the people whose devices send photos (each to their own destinations)."""


@person.command("add")
@click.argument("name")
@data_dir_option
@friendly_errors
def person_add(name: str, data_dir: Path | None) -> None:
    """Add a person; then give them devices and destinations."""
    if not name.strip() or not name.isprintable():
        raise click.BadParameter("give the person a visible name, e.g. anna", param_hint="NAME")
    _, state = open_state(data_dir)
    People(state.db).add_person(name.strip())
    click.echo(
        f"Person {name.strip()!r} added. Next: photo-relay destination add --person "
        f"{name.strip()} local /path/to/folder, and photo-relay device add PHONE --person "
        f"{name.strip()}."
    )


@person.command("list")
@data_dir_option
@friendly_errors
def person_list(data_dir: Path | None) -> None:
    """List people with their number of devices and destinations."""
    _, state = open_state(data_dir)
    for info in People(state.db).list_people():
        click.echo(f"{info.name}\t{info.devices} device(s)\t{info.destinations} destination(s)")


@main.group()
def destination() -> None:
    """Add and list where each person's photos go (several per person)."""


@destination.command("add")
@click.argument("kind", type=click.Choice(["local", "webdav"]))
@click.argument("location")
@click.option("--person", required=True, help="Whose photos go there (see `person list`).")
@click.option("--user", help="WebDAV login name; the password is asked for, or read from stdin.")
@click.option(
    "--path-template",
    help="Where each file lands there, e.g. {year}/{month}/{name} (default: the settings').",
)
@data_dir_option
@friendly_errors
def destination_add(
    kind: Literal["local", "webdav"],
    location: str,
    person: str,
    user: str | None,
    path_template: str | None,
    data_dir: Path | None,
) -> None:
    """Send PERSON's photos also to a folder here (local PATH) or a WebDAV server (URL).

    Photos they send from now on get a delivery there, checked like any other.
    """
    settings, state = open_state(data_dir)
    password: str | None = None
    if kind == "webdav":
        if not location.startswith(("http://", "https://")):
            raise click.BadParameter("a WebDAV address starts with https://", param_hint="URL")
        if user:
            password = click.prompt("Password", hide_input=True, err=True)
    else:
        location = str(Path(location).expanduser().resolve())
    added = People(state.db).add_destination(
        person,
        kind,
        location,
        user,
        password=password,
        data_dir=settings.data_dir,
        path_template=path_template,
    )
    info = added.info
    click.echo(
        f"Destination {info.id} added: {person}'s photos also go to {info.describe()}, "
        f"the {added.caught_up} sent before too. A running service starts copying there "
        "after a restart."
    )
    if added.not_kept:
        click.echo(
            f"{added.not_kept} earlier photo(s) are no longer kept here (their retention "
            "period was over), so they cannot be copied there; send them again from the "
            "phone to add them.",
            err=True,
        )


@destination.command("list")
@data_dir_option
@friendly_errors
def destination_list(data_dir: Path | None) -> None:
    """List every destination, whose it is, and where."""
    _, state = open_state(data_dir)
    for info in People(state.db).list_destinations():
        click.echo(f"{info.id}\t{info.person}\t{info.kind}\t{info.describe()}")


@device.command("list")
@data_dir_option
def device_list(data_dir: Path | None) -> None:
    """List devices and when they were last seen."""
    from app.observe.wording import display_zone, local_time

    settings, state = open_state(data_dir)
    zone = display_zone(settings.timezone)
    devices = state.list_devices()
    if not devices:
        click.echo("No devices yet. Add one with: photo-relay device add my-iphone")
    for info in devices:
        status = "revoked" if info.revoked else "active"
        seen = local_time(info.last_seen_at, zone) if info.last_seen_at else "never"
        added = local_time(info.created_at, zone)
        click.echo(f"{info.name}\t{status}\tadded {added}\tlast seen {seen}")


@device.command("revoke")
@click.argument("name")
@data_dir_option
@friendly_errors
def device_revoke(name: str, data_dir: Path | None) -> None:
    """Revoke a device's token; it is refused from the next request on."""
    _, state = open_state(data_dir)
    state.revoke_device(name)
    click.echo(f"Device {name!r} revoked.")


@device.command("rotate")
@click.argument("name")
@data_dir_option
@friendly_errors
def device_rotate(name: str, data_dir: Path | None) -> None:
    """Give a device a new token; the old one is refused from the next request on."""
    _, state = open_state(data_dir)
    token = new_token("prd")
    state.rotate_device_token(name, hash_token(token))
    click.echo(token)  # alone on stdout, like `device add`
    click.echo(
        f"Device {name!r} has a new token; its old one no longer works. Put this one in the "
        "Shortcut; it is not shown again.",
        err=True,
    )


@main.command("admin-token")
@data_dir_option
@friendly_errors
def admin_token(data_dir: Path | None) -> None:
    """Print the admin token (for the status endpoint and page)."""
    settings = existing_data(data_dir)
    if settings.admin_token:
        click.echo(settings.admin_token.get_secret_value())
    else:
        click.echo(ensure_admin_token(settings.admin_token_file))


@main.command()
@data_dir_option
def status(data_dir: Path | None) -> None:
    """Summarise what has been received and relayed (the status page, in the terminal)."""
    from app.cli.status_text import status_lines
    from app.observe.wording import destination_name, display_zone
    from app.store.overview import Overview
    from app.targets import open_target

    settings, state = open_state(data_dir)
    note_service_differences(settings)
    snapshot = Overview(state.db).snapshot(quiet_days=settings.device_quiet_days)
    target = open_target(settings)
    for line in status_lines(
        snapshot,
        display_zone(settings.timezone),
        target.describe(),
        destination=destination_name(target.kind),
        summary=state.summary(),
    ):
        click.echo(line)
    for line in destination_lines(state.db, target.describe()):
        click.echo(line)


def destination_lines(db: Database, configured: str) -> list[str]:
    """With more than one destination: each one's person and deliveries per state."""
    from app.observe.wording import STATE_SHORT
    from app.store.deliveries import read_delivery_counts

    destinations = People(db).list_destinations()
    if len(destinations) < 2:
        return []
    counts = db.call(read_delivery_counts)
    lines = ["", "Destinations:"]
    for info in destinations:
        where = configured if info.kind == "settings" else info.describe()
        states = counts.get(info.id, {})
        told = ", ".join(f"{n} {STATE_SHORT[s]}" for s, n in states.items() if n) or "nothing yet"
        lines.append(f"  {info.id} {info.person}: {where}: {told}")
    return lines


@main.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@data_dir_option
@friendly_errors
def import_folder(path: Path, data_dir: Path | None) -> None:
    """Back up a folder (an old phone export, a camera card); files already here are skipped."""
    import_files(path, data_dir)


@main.command()
@click.argument("sha256", required=False)
@data_dir_option
def retry(sha256: str | None, data_dir: Path | None) -> None:
    """Put failed items (or the one given) back in the relay queue."""
    _, state = open_state(data_dir)
    count = state.requeue_failed(sha256)
    # Also lifts a pause for refused credentials in a running service (it polls for this).
    state.journal("relay.resume_requested", "Retry requested with `photo-relay retry`.")
    click.echo(f"{count} item(s) put back in the queue; a running service picks them up.")


@main.group()
def nextcloud() -> None:
    """Connect photo-relay to your NextCloud: log in once, then check."""


@nextcloud.command("login")
@click.argument("url", required=False)
@click.option("--login", "login_name", help="Login name, with --app-password (pasted).")
@click.option(
    "--app-password",
    "pasted",
    is_flag=True,
    help="Paste an app password you created (Settings › Security) instead of the browser "
    "login; asked for hidden, or read from stdin.",
)
@click.option(
    "--folder",
    help="Folder in your NextCloud files for the photos (default: asked, proposing "
    "/Photos/iPhone; without a terminal /Photos/iPhone).",
)
@click.option("--poll-interval", type=float, default=2.0, hidden=True)
@click.option(
    "--person",
    help="Log in to this person's own NextCloud and add it as their destination (the "
    "configured destination stays as it is).",
)
@data_dir_option
@friendly_errors
def nextcloud_login(
    url: str | None,
    login_name: str | None,
    pasted: bool,
    folder: str | None,
    poll_interval: float,
    person: str | None,
    data_dir: Path | None,
) -> None:
    """Connect NextCloud at URL and send the photos there, in one go.

    Logs in (a browser link and QR code, or a pasted app password), stores the app
    password, switches the destination to this NextCloud and a photos folder, checks it
    all and says where the next photo will land. Without URL: the configured server.
    """
    from app.cli.nextcloud import login_command

    login_command(
        existing_data(data_dir),
        url,
        login_name=login_name,
        pasted=pasted,
        folder=folder,
        poll_interval=poll_interval,
        person=person,
    )


@nextcloud.command("check")
@click.argument("url", required=False)
@data_dir_option
@friendly_errors
def nextcloud_check(url: str | None, data_dir: Path | None) -> None:
    """Check the NextCloud connection: server, login, a probe file, and what it supports."""
    from app.cli.nextcloud import check_command

    check_command(existing_data(data_dir), url)


@main.command("config")
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the settings as JSON.")
def show_config(data_dir: Path | None, as_json: bool) -> None:
    """Show the settings in effect and where each comes from (secrets hidden)."""
    import json

    settings = load_settings(data_dir=data_dir)
    note_service_differences(settings)
    origins = settings.origins()
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(o) for o in origins], indent=2))
        return
    width = max(len(o.variable) for o in origins)
    for origin in origins:
        click.echo(f"{origin.variable:<{width}}  {origin.value}  ({origin.source})")
    click.echo(
        f"\nSettings file: {settings.settings_file}"
        + ("" if settings.settings_file.exists() else " (none yet)")
        + ". The environment and the command line override it."
    )
    if not settings.data_dir.is_dir():
        click.echo(
            f"The data folder {settings.data_dir.resolve()} does not exist yet; "
            "`photo-relay serve` makes it."
        )


def import_files(path: Path, data_dir: Path | None) -> None:
    """Hash everything, ask the database what it has, then store only the rest."""
    import asyncio

    from app.intake.folder_import import FolderImport, ImportResult, find_files, hash_files
    from app.intake.ingest import Ingest
    from app.store.spool import Spool

    settings, state = open_state(data_dir)
    spool = Spool(settings.spool_dir, min_free_bytes=settings.min_free_bytes)
    spool.make_folders()
    importer = FolderImport(Ingest(settings.intake, spool, state, on_new=lambda: None))
    files = find_files(path)
    result = ImportResult()
    total = sum(f.stat().st_size for f in files)
    with click.progressbar(length=total, label=f"Checking {len(files)} file(s)") as bar:
        hashes = hash_files(files, bar.update, result.problems)
    known = importer.known(hashes.values())
    new = {p: h for p, h in hashes.items() if h not in known}
    result.already_here += [p for p, h in hashes.items() if h in known]
    if new:
        size = sum(p.stat().st_size for p in new)
        with click.progressbar(length=size, label=f"Backing up {len(new)} file(s)") as bar:
            asyncio.run(importer.store(new, bar.update, result))
    click.echo(
        f"{len(result.stored)} file(s) backed up, {len(result.already_here)} already here, "
        f"{len(result.problems)} problem(s)."
    )
    if result.stored:
        click.echo("A running photo-relay copies them to the destination within seconds.")
    for problem_path, reason in result.problems:
        click.echo(f"  {problem_path}: {reason}", err=True)
    if result.problems:
        raise SystemExit(1)


@main.group()
def shortcuts() -> None:
    """The bundled Apple Shortcuts."""


@shortcuts.command("build")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("shortcuts"),
    show_default=True,
    help="Folder to write the .shortcut files into.",
)
def shortcuts_build(output: Path) -> None:
    """Write both shortcuts (unsigned); sign them on a Mac, see shortcuts/README.md."""
    from app.phone.shortcut import write_all

    for path in write_all(output):
        click.echo(f"Wrote {path}")


@main.command()
@data_dir_option
@click.option("--strict", is_flag=True, help="Exit non-zero on warnings too (for monitoring).")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def doctor(data_dir: Path | None, strict: bool, as_json: bool) -> None:
    """Check the setup and say what is wrong and how to fix it (exit 1 on a problem)."""
    import asyncio

    from app.observe.doctor import diagnose, print_report

    with contextlib.suppress(click.ClickException):  # the configuration check reports it
        note_service_differences(load_settings(data_dir=data_dir))
    checks = asyncio.run(diagnose(data_dir))
    sys.exit(print_report(checks, strict=strict, as_json=as_json))
