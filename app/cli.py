"""The `photo-relay` command: serve, device, admin-token, status, retry.

Commands other than `serve` work on the data folder directly (SQLite allows it while the
service runs), so a device added or revoked here takes effect at once.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from app.config import Settings
from app.db import Database
from app.errors import PhotoRelayError
from app.state import State
from app.tokens import ensure_admin_token, hash_token, new_token

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
        raise click.ClickException(f"The configuration is not valid: {problems}") from None


def data_dir_option(command: F) -> F:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Data folder (default: $PHOTO_RELAY_DATA_DIR or ./photo-relay-data).",
    )(command)


def friendly_errors(command: F) -> F:
    """Show our errors as one plain line instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except PhotoRelayError as exc:
            raise click.ClickException(exc.message) from None

    return wrapper  # type: ignore[return-value]


def open_state(data_dir: Path | None) -> tuple[Settings, State]:
    settings = load_settings(data_dir=data_dir)
    return settings, State(Database(settings.database_path))


@click.group()
@click.version_option(package_name="photo-relay")
def main() -> None:
    """photo-relay: gets your iPhone's photos safely into your own NextCloud."""


@main.command()
@data_dir_option
@click.option("--host", help="Address to listen on (default 127.0.0.1; 0.0.0.0 for the LAN).")
@click.option("--port", type=int, help="Port to listen on (default 8000).")
def serve(data_dir: Path | None, host: str | None, port: int | None) -> None:
    """Start the service."""
    import uvicorn

    from app.main import create_app
    from app.targets import open_target

    settings = load_settings(data_dir=data_dir, host=host, port=port)
    url = f"http://{settings.host}:{settings.port}"
    click.echo("photo-relay is starting.")
    click.echo(f"  Data folder:        {settings.data_dir.resolve()}")
    click.echo(f"  Photos will land in {open_target(settings).describe()}")
    click.echo(f"  Listening on        {url}")
    if settings.host in ("127.0.0.1", "localhost"):
        click.echo("  Only this computer can reach it; set --host 0.0.0.0 for your phone.")
    click.echo("  Add your phone:     photo-relay device add my-iphone   (prints its token)")
    click.echo("  Admin token:        photo-relay admin-token")
    sys.stdout.flush()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
    )


@main.group()
def device() -> None:
    """Add, list and revoke the devices allowed to upload."""


@device.command("add")
@click.argument("name")
@data_dir_option
@friendly_errors
def device_add(name: str, data_dir: Path | None) -> None:
    """Create a device and print its token (shown only this once)."""
    if not name.strip() or not name.isprintable():
        raise click.BadParameter(
            "give the device a visible name, e.g. my-iphone", param_hint="NAME"
        )
    _, state = open_state(data_dir)
    token = new_token("prd")
    state.add_device(name.strip(), hash_token(token))
    click.echo(token)  # alone on stdout, so scripts can capture it
    click.echo(
        f"Device {name!r} added. Put this token in the Shortcut; it is not shown again.",
        err=True,
    )


@device.command("list")
@data_dir_option
def device_list(data_dir: Path | None) -> None:
    """List devices and when they were last seen."""
    _, state = open_state(data_dir)
    devices = state.list_devices()
    if not devices:
        click.echo("No devices yet. Add one with: photo-relay device add my-iphone")
    for info in devices:
        status = "revoked" if info.revoked else "active"
        seen = info.last_seen_at or "never"
        click.echo(f"{info.name}\t{status}\tadded {info.created_at}\tlast seen {seen}")


@device.command("revoke")
@click.argument("name")
@data_dir_option
@friendly_errors
def device_revoke(name: str, data_dir: Path | None) -> None:
    """Revoke a device's token; it is refused from the next request on."""
    _, state = open_state(data_dir)
    state.revoke_device(name)
    click.echo(f"Device {name!r} revoked.")


@main.command("admin-token")
@data_dir_option
def admin_token(data_dir: Path | None) -> None:
    """Print the admin token (for the status endpoint and page)."""
    settings = load_settings(data_dir=data_dir)
    if settings.admin_token:
        click.echo(settings.admin_token.get_secret_value())
    else:
        click.echo(ensure_admin_token(settings.admin_token_file))


@main.command()
@data_dir_option
def status(data_dir: Path | None) -> None:
    """Summarise what has been received and relayed."""
    _, state = open_state(data_dir)
    summary = state.summary()
    counts = summary["counts"]
    click.echo(f"{summary['total_items']} files received.")
    for name, count in counts.items():
        click.echo(f"  {name:<9} {count}")
    click.echo(f"Spool: {summary['spool_files']} files, {summary['spool_bytes']} bytes.")
    if summary["last_error"]:
        error = summary["last_error"]
        click.echo(f"Last problem ({error.at}): {error.message}")


@main.command()
@click.argument("sha256", required=False)
@data_dir_option
def retry(sha256: str | None, data_dir: Path | None) -> None:
    """Put failed items (or the one given) back in the relay queue."""
    _, state = open_state(data_dir)
    count = state.requeue_failed(sha256)
    click.echo(f"{count} item(s) put back in the queue; a running service picks them up.")


if __name__ == "__main__":
    main()
