"""The commands people run on the warehouse: review, lists, query, generate, and the checks they ask of it."""
