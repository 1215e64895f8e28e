"""The `photo-relay` command: serve, devices, tokens, NextCloud login, status, doctor.

A face like `api` and `web`: it uses the parts below it and wires nothing itself except
through `app.main` when serving. It must not import `api` or `web`.
"""

from app.cli.commands import main

__all__ = ["main"]
