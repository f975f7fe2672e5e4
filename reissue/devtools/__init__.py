"""Developer tools: the embedded stack, demo and seed data, soak and chaos programs, the benchmark and its bare reference."""
