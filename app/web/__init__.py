"""The status page: server-rendered HTML (Jinja2), its login, sessions, thumbnails, static files.

A face for people in a browser. It reads through `observe` and `store`; it must not import
`api` or `cli`, and it changes nothing but through the same parts the API uses.
"""
