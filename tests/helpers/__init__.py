"""What several test files share: running the command line, tiny models, float64 references, made-up tasks."""
