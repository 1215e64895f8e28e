"""Seeing what happened: live events, the journal feed, metrics, monitoring and the doctor.

Read-mostly views of the store, the relay and the target for people and scrapers. It must not
import the faces (`api`, `web`, `cli`); the faces render what it gathers.
"""
