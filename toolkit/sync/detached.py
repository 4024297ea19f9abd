"""The detached realtime process: `python -m toolkit.sync.detached CONFIG PIPE [--allow-deletes]`.

`realtime.start_detached` starts this engine entry point, not the CLI: the process that
writes is the engine's own, whatever face started it. It prints its end, and exits as
`realtime-sync start --until-idle` would (1 with deletes held back or changes failed, 2 on a
fatal error).
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from toolkit.config import load_config
    from toolkit.errors import FatalError
    from toolkit.sync import realtime

    config_path, pipe_name, *flags = argv
    try:
        stats = realtime.run_foreground(
            load_config(Path(config_path)),
            pipe_name,
            until_idle=False,
            max_changes=None,
            allow_deletes="--allow-deletes" in flags,
        )
    except FatalError as exc:
        print(f"scimsync: error: {exc}", flush=True)
        return getattr(exc, "exit_code", 2)
    print(f"realtime sync stopped after {stats.changes} changes", flush=True)
    return 1 if stats.held_deletes or stats.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
