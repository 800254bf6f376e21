"""The night's stages, in the order they run: load, validate, history, gates, rules, abuse,
reconcile, decisions, publish."""
