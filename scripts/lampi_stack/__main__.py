"""`python -m lampi_stack up|down|status`, run by `make up`, `make down` and `make status`."""

import argparse
import sys

from .config import Config, StackError
from .stack import down, status, up


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lampi_stack", description=__doc__)
    parser.add_argument("action", choices=["up", "down", "status"])
    action = parser.parse_args(argv).action
    try:
        config = Config.from_env()
        if action == "up":
            print(f"up: {up(config)}")
        elif action == "down":
            stopped = down(config)
            print(f"down: stopped {', '.join(stopped)}" if stopped else "down: nothing was running")
        else:
            print(status(config))
    except StackError as error:
        print(f"{action}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
