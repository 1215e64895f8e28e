"""Taking files in: the one path from received bytes to a recorded item.

PUT bodies, multipart forms and folder imports all end in `ingest`; `media` reads the capture
time and kind from the bytes. It must not call a destination (the relay does that) nor import
the faces (`api`, `web`, `cli`) or `observe`.
"""
