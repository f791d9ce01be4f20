"""`python -m lampi_stack up|down|status`, run by `make up`, `make down` and `make status`.

`python -m lampi_stack manage COMMAND...` runs manage.py with the running stack's settings (its database and
password hasher), e.g. `manage loadtestingdata --count 1000` to seed the database the stack serves.
"""

import argparse
import sys

from .config import Config, StackError
from .stack import down, manage, status, up


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lampi_stack", description=__doc__)
    parser.add_argument("action", choices=["up", "down", "status", "manage"])
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="manage.py's command and its arguments")
    args = parser.parse_args(argv)
    action = args.action
    try:
        config = Config.from_env()
        if action == "up":
            print(f"up: {up(config)}")
        elif action == "down":
            stopped = down(config)
            print(f"down: stopped {', '.join(stopped)}" if stopped else "down: nothing was running")
        elif action == "status":
            print(status(config))
        else:
            return manage(config, args.arguments)
    except StackError as error:
        print(f"{action}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
