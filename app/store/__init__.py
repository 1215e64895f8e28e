"""What is kept at home: the spool of files, the SQLite database and every query on it.

Holds the bytes (`spool`), their retention, the schema and migrations (`db`), the item queue
and its transitions (`state`), the journal's one writer (`journal`), read-only summaries
(`overview`) and chunked-upload progress. All SQL of the service lives here (the backup
conversation's own tables in `app.phone` are the one exception). It must not talk to the
network, know a destination, or import anything above the leaf modules.
"""
