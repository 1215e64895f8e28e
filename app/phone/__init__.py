"""The iPhone side: the Shortcut generator, its plist blocks, and the conversations.

`shortcut` builds the bundled shortcuts; `backup` keeps the runs a phone starts and `rules`
decides which candidates it must send (and which go into the "Safe at home" album);
`free_up` decides, photo by photo, what "Free up space" may delete. It must not import the
faces (`api`, `web`, `cli`) or `observe`, and it never calls a destination.
"""
