"""A trained model as a sound search engine: embedding files and texts, the index, top-k queries."""
