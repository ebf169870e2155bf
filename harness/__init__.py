"""chaoscafe: a chaos and resilience testing harness comparing a synchronous and an asynchronous coffee shop."""

__version__ = "0.1.0"
