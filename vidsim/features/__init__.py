"""Per-clip features: audio statistics (pyAudioAnalysis) and frame embeddings (open_clip)."""
