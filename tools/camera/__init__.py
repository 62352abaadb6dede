"""Camera boards: synthetic frames, the benchmark."""
