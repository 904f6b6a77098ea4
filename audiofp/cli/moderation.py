"""The moderation commands of ``audiofp``: ``serve``, ``keys``, ``link``.

``audiofp.cli`` calls :func:`register` to add them to its group. They use the
group's context object (``ctx.obj.store``, ``ctx.obj.settings``) and its
one place for error exit codes (``audiofp.cli._fail``).

``seed_options`` / :func:`apply_seed` let the bulk ingest command attach labels
to the sounds it adds and link them to a removal, for operators seeding the
system from an archive of removed content.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError

from ..errors import AudioFPError
from ..services import CLI_ACTOR, ROLES, create_key, label_sounds, link_sounds_to_removal, list_keys, revoke_key

F = TypeVar("F", bound=Callable[..., Any])


def _fail(exc: Exception) -> None:
    from .app import _fail as cli_fail  # the CLI's one mapping of errors to exit codes

    cli_fail(exc)


def _store(ctx: click.Context) -> Any:
    return ctx.find_root().obj.store


def _database_url(ctx: click.Context) -> str:
    return ctx.find_root().obj.settings.resolved_database_url


# --- serve -------------------------------------------------------------------


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (gunicorn); use about 2 per core in production.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64), help="Threads per worker.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, threads: int) -> None:
    """Run the HTTP API (gunicorn) on the configured store (SQLite by default)."""
    from gunicorn.app.base import BaseApplication

    from api import create_app

    url = _database_url(ctx)
    try:
        # Migrate once here, so workers do not race to do it at their first request.
        from ..store import Store

        Store.open(url).dispose()
    except (AudioFPError, SQLAlchemyError) as exc:
        _fail(exc)

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("accesslog", "-")
            self.cfg.set("timeout", 120)

        def load(self) -> Any:
            return create_app({"DATABASE_URL": url})

    click.echo(f"audiofp: serving on http://{host}:{port} ({workers} worker(s)); store: {url.split('://')[0]}", err=True)
    Server().run()


# --- keys --------------------------------------------------------------------


@click.group()
def keys() -> None:
    """Issue, list and revoke API keys."""


@keys.command("create")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the key may do.")
@click.option("--name", required=True, help="Who or what holds the key (shown in the audit log).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.pass_context
def keys_create(ctx: click.Context, role: str, name: str, as_json: bool) -> None:
    """Issue a key; its secret is printed once and never stored."""
    try:
        issued = create_key(_store(ctx), name=name, role=role, actor=CLI_ACTOR)
    except (AudioFPError, SQLAlchemyError) as exc:
        _fail(exc)
        return
    if as_json:
        click.echo(json.dumps({"id": issued.record.id, "name": name, "role": role, "key": issued.secret}))
    else:
        click.echo(issued.secret)
        click.echo(f"key {issued.record.id} ({role}) for {name!r}: store the secret now, it is not kept", err=True)


@keys.command("list")
@click.pass_context
def keys_list(ctx: click.Context) -> None:
    """List keys (id, role, name, prefix, created, revoked)."""
    try:
        records = list_keys(_store(ctx))
    except (AudioFPError, SQLAlchemyError) as exc:
        _fail(exc)
        return
    for k in records:
        revoked = f" revoked {k.revoked_at.isoformat()}" if k.revoked_at else ""
        click.echo(f"{k.id}\t{k.role}\t{k.name}\t{k.prefix}...\t{k.created_at.isoformat()}{revoked}")


@keys.command("revoke")
@click.argument("key_id", type=int)
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: int) -> None:
    """Revoke a key; requests with it get 401 from now on."""
    try:
        revoke_key(_store(ctx), key_id, actor=CLI_ACTOR)
    except (AudioFPError, SQLAlchemyError) as exc:
        _fail(exc)
        return
    click.echo(f"key {key_id} revoked", err=True)


# --- seeding -----------------------------------------------------------------


def seed_options(command: F) -> F:
    """Add ``--tag``, ``--removal-label`` and ``--removal-reason`` to an ingest command."""
    command = click.option("--removal-reason", default=None, help="Reason recorded with --removal-label.")(command)
    command = click.option("--removal-label", default=None, metavar="POLICY",
                           help="Link every ingested sound to removed content under this policy label.")(command)
    command = click.option("--tag", "tags", multiple=True, metavar="LABEL",
                           help="Label attached to every ingested sound (repeatable).")(command)
    return command


def apply_seed(store: Any, sound_ids: list[int], *, tags: tuple[str, ...] | list[str] = (),
               removal_label: str | None = None, removal_reason: str | None = None) -> int:
    """Label ``sound_ids`` and link them to a removal; returns live uploads affected."""
    if not sound_ids:
        return 0
    if removal_label:
        outcomes = link_sounds_to_removal(store, sound_ids, policy_label=removal_label, reason=removal_reason,
                                          labels=list(tags), actor=CLI_ACTOR)
        return sum(o.affected_live_uploads for o in outcomes)
    if tags:
        label_sounds(store, sound_ids, list(tags), actor=CLI_ACTOR)
    return 0


@click.command("link")
@click.argument("sound_ids", nargs=-1, required=True, type=int)
@seed_options
@click.pass_context
def link(ctx: click.Context, sound_ids: tuple[int, ...], tags: tuple[str, ...], removal_label: str | None,
         removal_reason: str | None) -> None:
    """Label known sounds and/or link them to removed content (archive seeding)."""
    if not tags and not removal_label:
        raise click.UsageError("give --tag and/or --removal-label")
    try:
        affected = apply_seed(_store(ctx), list(sound_ids), tags=tags, removal_label=removal_label,
                              removal_reason=removal_reason)
    except (AudioFPError, SQLAlchemyError) as exc:
        _fail(exc)
        return
    click.echo(f"{len(sound_ids)} sound(s) updated; {affected} live upload(s) now use removed-linked sounds", err=True)


def register(group: click.Group) -> None:
    """Add ``serve``, ``keys`` and ``link`` to the ``audiofp`` command group."""
    group.add_command(serve)
    group.add_command(keys)
    group.add_command(link)
