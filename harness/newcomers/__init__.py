"""Services that join a running shop (services), and the late-comer phase (latecomer)."""
