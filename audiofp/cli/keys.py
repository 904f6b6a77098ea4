"""``audiofp keys``: issue, list and revoke API keys (the operator acts as the CLI actor)."""

from __future__ import annotations

import json

import click

from ..services import CLI_ACTOR, ROLES, create_key, list_keys, revoke_key
from .app import Context, main, pass_context


@main.group()
def keys() -> None:
    """Issue, list and revoke API keys."""


@keys.command("create")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the key may do.")
@click.option("--name", required=True, help="Who or what holds the key (shown in the audit log).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@pass_context
def keys_create(ctx: Context, role: str, name: str, as_json: bool) -> None:
    """Issue a key; its secret is printed once and never stored."""
    issued = create_key(ctx.store, name=name, role=role, actor=CLI_ACTOR)
    if as_json:
        click.echo(json.dumps({"id": issued.record.id, "name": name, "role": role, "key": issued.secret}))
    else:
        click.echo(issued.secret)
        click.echo(f"key {issued.record.id} ({role}) for {name!r}: store the secret now, it is not kept", err=True)


@keys.command("list")
@pass_context
def keys_list(ctx: Context) -> None:
    """List keys (id, role, name, prefix, created, revoked)."""
    for k in list_keys(ctx.store):
        revoked = f" revoked {k.revoked_at.isoformat()}" if k.revoked_at else ""
        click.echo(f"{k.id}\t{k.role}\t{k.name}\t{k.prefix}...\t{k.created_at.isoformat()}{revoked}")


@keys.command("revoke")
@click.argument("key_id", type=int)
@pass_context
def keys_revoke(ctx: Context, key_id: int) -> None:
    """Revoke a key; requests with it get 401 from now on."""
    revoke_key(ctx.store, key_id, actor=CLI_ACTOR)
    click.echo(f"key {key_id} revoked", err=True)
