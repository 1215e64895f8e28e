"""Everything NextCloud: the target, its OCS/status API, Login Flow v2, the check, credentials.

Built on the generic WebDAV target; NextCloud's extensions (chunking v2, X-OC-Mtime,
OC-Checksum, maintenance mode) and its error vocabulary live here and nowhere else. It must
not import the store beyond chunk progress, nor anything above `targets`.
"""
