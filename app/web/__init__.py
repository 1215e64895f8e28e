"""The status page: server-rendered HTML (Jinja2), its login, thumbnails and static files."""
