"""`python -m molebench` (also what `accelerate launch -m molebench` runs)."""

from molebench.cli import main

if __name__ == "__main__":
    main()
