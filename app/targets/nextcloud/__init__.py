"""Everything NextCloud: the target, its OCS/status API, Login Flow v2, the check, credentials.

Built on the generic WebDAV target; NextCloud's extensions (chunking v2, X-OC-Mtime,
OC-Checksum, maintenance mode, forbidden names) live here and nowhere else. Its HTTP
clients come from `targets.client` and its replies are read by `targets.replies`, like
every destination's. It must not import the store beyond chunk progress, nor anything
above `targets`.
"""
