"""thyronet's benchmark scripts; ``python -m benchmarks`` runs them all."""
