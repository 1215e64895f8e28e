"""The relay worker: claims due items, copies them to the target, verifies, marks, backs off.

It talks to a destination only through the `Target` interface and records every outcome in
`app.store`. It must not import the faces (`api`, `web`, `cli`) or `observe`.
"""
