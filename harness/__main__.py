"""`python -m harness` is the `chaoscafe` command."""
import sys

from harness.cli import main

sys.exit(main())
