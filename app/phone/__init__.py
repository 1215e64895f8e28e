"""The iPhone side: the Shortcut generator, its plist blocks, and the backup conversation.

`shortcut` builds the bundled shortcuts; `backup` keeps the runs a phone starts and `rules`
decides which candidates it must send. It must not import the faces (`api`, `web`, `cli`) or
`observe`, and it never calls a destination.
"""
