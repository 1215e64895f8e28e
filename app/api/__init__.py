"""The JSON API: one router per resource; `deps` holds what they share.

A face: it asks the parts below for what it needs and answers in JSON. A router must not
import another router, and `api` must not import `web` or `cli`.
"""
