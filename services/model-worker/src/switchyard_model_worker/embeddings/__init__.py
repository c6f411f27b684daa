"""Sentence embeddings: a BERT encoder run with numpy, and the OpenAI embeddings shapes."""
