"""``python -m bench`` (``make bench``): run every benchmark."""

from bench import imports

if __name__ == "__main__":
    imports.main([])
