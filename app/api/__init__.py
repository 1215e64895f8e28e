"""HTTP routes, one module per resource; `deps` holds what they share."""
