"""Model backends (openai, vllm, transformers, simulated) behind one small interface."""
