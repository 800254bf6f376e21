"""The benchmark of issue #5: the job against reading its inputs, and against a pandas peer."""
