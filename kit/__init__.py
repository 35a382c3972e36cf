"""kit: how fast does TensorFlow train on this CPU, which build and settings win, and can you
trust the number?"""

__version__ = "0.1.0"
