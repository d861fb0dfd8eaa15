"""The repository's own tools (never installed, never imported by the learner's package):
``python -m tools.book`` builds the book, ``python -m tools.course`` syncs, strips and
releases the notebooks. They depend on ``tamegrad``; ``tamegrad`` never depends on them."""
