"""photo-relay: gets an iPhone's photos safely into your own NextCloud.

Files arrive over HTTP, are stored durably under their SHA-256, and a relay worker copies
them to the destination (a local folder, WebDAV or NextCloud), where each copy is verified.
"""

__version__ = "0.1.0"
