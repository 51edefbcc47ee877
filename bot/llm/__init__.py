"""The model layer: the structured-output client, its errors, token counts and the providers (Ollama, OpenAI-compatible)."""
