"""The terminal side of `photo-relay nextcloud login` and `photo-relay nextcloud check`.

Turns settings and command-line input into calls of targets.nextcloud.login / .check and
prints the results in plain words: the login link with a QR code (segno), what was stored,
what the server supports. `login` is the whole connection in one go: it also switches the
destination to NextCloud and a photos folder in the data folder's settings file (which a
running service picks up by itself), runs the check and says where the next photo lands.
The app password is never printed.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from datetime import datetime

import click
import segno
from pydantic import SecretStr, ValidationError

from app.config import Settings, write_settings_file
from app.errors import ConfigurationError, PhotoRelayError
from app.naming import remote_path
from app.targets import Target, open_target
from app.targets.nextcloud.api import normalise_server_url
from app.targets.nextcloud.check import CheckPlan, run_check
from app.targets.nextcloud.credentials import NextcloudCredentials, load_credentials
from app.targets.nextcloud.login import LoginFlow, login_with_app_password, login_with_flow

__all__ = ["DEFAULT_PHOTOS_FOLDER", "check_command", "login_command"]

DEFAULT_PHOTOS_FOLDER = "/Photos/iPhone"
# What `login` writes to the settings file; each is reported when the environment wins.
DESTINATION_SETTINGS = ("target", "target_url", "target_folder")


def configure_logging(settings: Settings) -> None:
    """Event lines on stderr: only warnings, unless PHOTO_RELAY_LOG_LEVEL=debug.

    The commands say what happened in words already; info lines would only interleave.
    httpx's request lines stay off either way.
    """
    level = logging.DEBUG if settings.log_level == "debug" else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(message)s")
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def show_login_link(flow: LoginFlow) -> None:
    click.echo("Open this link in a browser where you can log in to NextCloud, and grant access:")
    click.echo("")
    click.echo(f"  {flow.login_url}")
    click.echo("")
    qr = io.StringIO()
    segno.make(flow.login_url, error="m").terminal(out=qr, compact=True)
    click.echo("Or scan this code with your phone:\n" + qr.getvalue())
    click.echo("Waiting for you to grant access (the link works for 20 minutes; Ctrl-C stops) ...")
    sys.stdout.flush()


def read_app_password() -> SecretStr:
    """Hidden prompt on a terminal; the first line of stdin otherwise (for scripts)."""
    if sys.stdin.isatty():
        value = click.prompt("App password", hide_input=True)
    else:
        value = sys.stdin.readline()
    value = value.strip()
    if not value:
        raise click.UsageError("No app password given (type it at the prompt or pipe it in).")
    return SecretStr(value)


def login_command(
    settings: Settings,
    url: str | None,
    *,
    login_name: str | None,
    pasted: bool,
    folder: str | None,
    poll_interval: float,
    person: str | None = None,
) -> None:
    configure_logging(settings)
    if person is not None:
        if url is None:
            raise click.UsageError("Give the address of their NextCloud: nextcloud login URL.")
        person_login(settings, person, normalise_server_url(url), folder, poll_interval)
        return
    server = normalise_server_url(url or configured_server(settings))
    try:
        previous = read_stored(settings)
    except ConfigurationError:  # a broken file is what a new login repairs
        previous = None
    if pasted != (login_name is not None):
        raise click.UsageError("Give --login NAME and --app-password together (or neither).")
    if login_name is not None:
        password = read_app_password()
        credentials = asyncio.run(
            login_with_app_password(server, login_name, password, settings.credentials_file)
        )
    else:
        try:
            credentials = asyncio.run(
                login_with_flow(
                    server, settings.credentials_file, show=show_login_link, interval=poll_interval
                )
            )
        except KeyboardInterrupt:
            raise click.ClickException(
                "Stopped before access was granted; nothing was stored."
            ) from None
    report_login(credentials, settings)
    if previous is not None:
        click.echo(
            f"This replaced the earlier login ({previous.login_name!r} at {previous.server}); "
            "its app password keeps working until you revoke it in NextCloud."
        )
    photos_folder = choose_folder(folder, settings)
    click.echo("")
    check_before_switching(settings, credentials.server, photos_folder)
    click.echo("")
    switched = switch_destination(settings, credentials.server, photos_folder)
    say_where_photos_land(switched, credentials)


def person_login(
    settings: Settings, person: str, server: str, folder: str | None, poll_interval: float
) -> None:
    """Log a person in to their own NextCloud (Login Flow v2: they grant their own app
    password, kept in a file of theirs, 0600) and add it as one of their destinations;
    the configured destination is left as it is."""
    from app.store.db import Database
    from app.store.people import People, nextcloud_credentials_file

    db = Database(settings.database_path)
    try:
        people = People(db)
        people.person_id(person)  # an unknown person fails before anyone logs in
        credentials_file = nextcloud_credentials_file(settings.data_dir, person)
        credentials_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            credentials = asyncio.run(
                login_with_flow(
                    server, credentials_file, show=show_login_link, interval=poll_interval
                )
            )
        except KeyboardInterrupt:
            raise click.ClickException(
                "Stopped before access was granted; nothing was stored."
            ) from None
        photos_folder = "/" + (folder or DEFAULT_PHOTOS_FOLDER).strip().strip("/")
        added = people.add_destination(
            person, "nextcloud", credentials.server, credentials.login_name, folder=photos_folder
        )
    finally:
        db.close()
    click.echo(
        f"Logged in to {credentials.server} as {credentials.login_name!r} for {person}: "
        f"their photos go to {photos_folder} there (destination {added.info.id}), the "
        f"{added.caught_up} sent before too. A running service starts copying there after "
        "a restart."
    )


def check_before_switching(settings: Settings, server: str, folder: str) -> None:
    """The check, run as the relay would run after the switch; a failure switches nothing,
    so photos never start queueing for a destination that cannot take them."""
    proposed = settings.model_copy(
        update={"target": "nextcloud", "target_url": server, "target_folder": folder}
    )
    try:
        check_command(proposed, None)
    except PhotoRelayError as exc:
        raise type(exc)(
            f"{exc.message} The login is stored, but photos keep going to "
            f"{open_target(settings).describe()}: fix this, then run `photo-relay nextcloud "
            "login` again."
        ) from exc


def configured_server(settings: Settings) -> str:
    """The NextCloud named by the settings (environment or settings file) or the last login."""
    if settings.target_url and settings.target != "webdav":
        return settings.target_url
    try:
        stored = read_stored(settings)
    except ConfigurationError:
        stored = None
    if stored is not None:
        return stored.server
    raise ConfigurationError(
        "Which NextCloud? Give its address: `photo-relay nextcloud login "
        "https://cloud.example.org` (or set PHOTO_RELAY_TARGET_URL)."
    )


def choose_folder(given: str | None, settings: Settings) -> str:
    """The photos folder: --folder, else asked on a terminal (proposing the current one or
    /Photos/iPhone), else that proposal. "/" means the top of the user's files."""
    current = settings.target_folder if settings.target == "nextcloud" else None
    proposal = current or DEFAULT_PHOTOS_FOLDER
    if given is None and sys.stdin.isatty():
        given = click.prompt(
            "Folder in your NextCloud files for the photos (Enter accepts)", default=proposal
        )
    return "/" + (given if given is not None else proposal).strip().strip("/")


def switch_destination(settings: Settings, server: str, folder: str) -> Settings:
    """Write the destination to the settings file; return the settings as read after it."""
    wanted = {"target": "nextcloud", "target_url": server, "target_folder": folder}
    path = write_settings_file(settings.data_dir, wanted)
    switched = Settings(data_dir=settings.data_dir)
    click.echo(f"Destination switched to NextCloud, folder {folder} (saved in {path}).")
    for name in DESTINATION_SETTINGS:
        origin = switched.origin_of(name)
        if origin != "settings file" and not _same_setting(getattr(switched, name), wanted[name]):
            click.echo(
                f"Note: PHOTO_RELAY_{name.upper()} is set in the {origin} "
                f"({getattr(switched, name)}) and wins over the settings file; remove it "
                "there for this to take effect.",
                err=True,
            )
    click.echo(
        "A running photo-relay notices this within seconds and restarts by itself to use it."
    )
    return switched


def _same_setting(value: str | None, wanted: str) -> bool:
    """Equal as the target reads them: folders without their outer slashes, servers as
    base URLs (an environment that already says the same thing needs no note)."""
    if value is None:
        return False
    if value.strip("/") == wanted.strip("/"):
        return True
    return _same_server(wanted, value)


def say_where_photos_land(settings: Settings, credentials: NextcloudCredentials) -> None:
    """One example path, filled in as the relay will for a photo taken now."""
    if settings.target != "nextcloud":
        click.echo(
            f"Until then, photos keep landing in {open_target(settings).describe()}.", err=True
        )
        return
    example = remote_path(
        settings.path_template,
        captured_local=datetime.now(),
        name="IMG_0001.HEIC",
        sha256="0" * 64,
        kind="photo",
        device="my-iphone",
    )
    folder = (settings.target_folder or "/").rstrip("/")
    click.echo(
        f"The next photo will land in NextCloud at {settings.target_url or credentials.server}, "
        f"in {credentials.user_id!r}'s files: {folder}/{example} (for a photo taken now)."
    )


def report_login(credentials: NextcloudCredentials, settings: Settings) -> None:
    click.echo(
        f"Connected: photo-relay can use NextCloud at {credentials.server} as "
        f"{credentials.login_name!r} (user id {credentials.user_id!r})."
    )
    click.echo(
        f"The app password is stored in {settings.credentials_file} (only you can read it). "
        "You can revoke it in NextCloud under Settings › Security › Devices & sessions."
    )


def check_command(settings: Settings, url: str | None) -> None:
    configure_logging(settings)
    plan = check_plan(settings, url)
    relay_target = configured_target(settings, plan.server)
    target = relay_target or target_for_check(settings, plan)

    async def check_with_target() -> None:
        try:
            await run_check(plan, say=click.echo, target=target, relay_target=bool(relay_target))
        finally:
            await target.close()

    asyncio.run(check_with_target())


def read_stored(settings: Settings) -> NextcloudCredentials | None:
    try:
        return load_credentials(settings.credentials_file)
    except (OSError, ValueError, ValidationError):
        raise ConfigurationError(
            f"The credentials file {settings.credentials_file} cannot be read; run "
            "`photo-relay nextcloud login URL` again (it replaces the file)."
        ) from None


def check_plan(settings: Settings, url: str | None) -> CheckPlan:
    """The server and login to check: the URL given, the target settings, or the stored file."""
    stored = read_stored(settings)
    is_nextcloud = settings.target == "nextcloud"
    target_url = settings.target_url if is_nextcloud else None
    server_text = url or target_url or (stored.server if stored else None)
    if not server_text:
        raise ConfigurationError(
            "No NextCloud to check yet. Run `photo-relay nextcloud login URL` first, or give "
            "the address: photo-relay nextcloud check https://cloud.example.org"
        )
    server = normalise_server_url(server_text)
    user = settings.target_user if is_nextcloud else None
    password = settings.target_password if is_nextcloud else None
    login: tuple[str | None, SecretStr | None, str] = (None, None, "nowhere")
    configured_server = target_url or (stored.server if stored else None)
    if user and password is not None and _same_server(server, configured_server):
        login = (user, password, "PHOTO_RELAY_TARGET_USER/_PASSWORD")
    elif stored is not None and _same_server(server, stored.server):
        login = (stored.login_name, stored.app_password, str(settings.credentials_file))
    return CheckPlan(
        server,
        *login,
        chunk_threshold_bytes=settings.target_chunk_threshold_bytes,
        chunk_bytes=settings.target_chunk_bytes,
    )


def configured_target(settings: Settings, server: str) -> Target | None:
    """The relay's own NextCloud target when it points at `server`; else None."""
    if settings.target != "nextcloud":
        return None
    stored = read_stored(settings)
    target_server = settings.target_url or (stored.server if stored else None)
    if not _same_server(server, target_server):
        return None
    return open_target(settings)


def target_for_check(settings: Settings, plan: CheckPlan) -> Target:
    """A NextCloud target for the plan's server and login, writing as the relay would.

    For a server the relay is not set up for: the relay's own settings (chunk sizes,
    read-back, timeouts) with the plan's address and login, at the top of the user's files.
    """
    checked = settings.model_copy(
        update={
            "target": "nextcloud",
            "target_url": plan.server,
            "target_user": plan.login_name,
            "target_password": plan.app_password,
            "target_folder": None,
        }
    )
    return open_target(checked)


def _same_server(server: str, other: str | None) -> bool:
    try:
        return other is not None and normalise_server_url(other) == normalise_server_url(server)
    except ConfigurationError:
        return False
